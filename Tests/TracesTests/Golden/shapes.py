import asyncio
import json
import threading


def fact(n):
    if n <= 1:
        return 1
    return n * fact(n - 1)


def evens(k):
    for i in range(k):
        yield i * 2


def boom(x):
    raise ValueError("bad %d" % x)


def work(box):
    box.append(sum(range(5)))


async def double(x):
    await asyncio.sleep(0)
    return x * 2


async def both():
    a = await double(1)
    return await double(a)


def main():
    total = fact(3)
    items = list(evens(2))
    try:
        boom(total)
    except ValueError as e:
        msg = str(e)
    box = []
    t = threading.Thread(target=work, args=(box,))
    t.start()
    t.join()
    four = asyncio.run(both())
    squares = sum(x * x for x in items)
    return total, items, msg, json.dumps(box), four, squares


def uncaught():
    boom(1)
