"""Drives a Warden episode with OpenEnv's published client (openenv-core), as a trainer would.

Usage: openenv_client.py BASE_URL TOKEN TASK_ID GOLD_PATCH_FILE
Prints one JSON object with what each episode returned.
"""
import json
import sys

from openenv.core.generic_client import GenericEnvClient
from websockets.asyncio.client import connect as ws_connect


class AuthenticatedClient(GenericEnvClient):
    """OpenEnv's generic client, sending Warden's bearer token with the WebSocket upgrade."""

    def __init__(self, base_url, token):
        super().__init__(base_url=base_url, message_timeout_s=120)
        self._token = token

    async def connect(self):
        if self._ws is None:
            self._ws = await ws_connect(self._ws_url, open_timeout=self._connect_timeout, max_size=self._max_message_size,
                                        additional_headers={"Authorization": f"Bearer {self._token}"})
        return self


def tool(name, body):
    return {"response": f"<tool: {name}>\n{body}\n</tool>", "model_version": "policy-7"}


def main():
    base_url, token, task_id, gold_file = sys.argv[1:5]
    gold = open(gold_file, encoding="utf-8").read()
    results = {}
    with AuthenticatedClient(base_url, token).sync() as env:
        opening = env.reset(task_id=task_id, protocol="cwm")
        results["opening_roles"] = [m["role"] for m in opening.observation["messages"]]
        results["opening_done"] = opening.done
        env.step(tool("create", "/tmp/gold.patch\n" + gold.rstrip("\n")))
        applied = env.step(tool("bash", "git apply /tmp/gold.patch && git status --short"))
        results["applied_exit_code"] = applied.observation["info"]["exit_code"]
        submitted = env.step(tool("submit", ""))
        results["gold"] = {"reward": submitted.reward, "done": submitted.done,
                           "exit_status": submitted.observation["info"].get("exit_status"),
                           "resolved": submitted.observation["info"].get("score", {}).get("resolved")}
        results["state_after_gold"] = env.state()

        env.reset(task_id=task_id)
        env.step(tool("bash", "printf 'diff --git a/x b/x\\n' > /tmp/empty.patch"))
        empty = env.step(tool("submit", "/tmp/empty.patch"))
        results["empty"] = {"reward": empty.reward, "done": empty.done}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
