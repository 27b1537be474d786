#!/usr/bin/env bash
echo "1..4"
echo "ok 1 - setup"
echo "not ok 2 - database reachable"
echo "Bail out! cannot reach the database"
echo "ok 3 - should not count"
