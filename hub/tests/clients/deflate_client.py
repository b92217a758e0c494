"""Two Python `websockets` clients of one hub, one with permessage-deflate
(the library's default) and one without, on the same channels for the same
time; prints what each negotiated and how their decoded streams compare.

    python3 deflate_client.py ws://127.0.0.1:PORT/ws SECONDS CHANNEL...

Run by hub/tests/deflate.rs.
"""
import asyncio
import json
import sys

import websockets


async def client(url, compression, channels, seconds):
    async with websockets.connect(url, compression=compression, max_size=1 << 22) as ws:
        ext = ws.response.headers.get("Sec-WebSocket-Extensions")
        # Sent compressed when negotiated: the hub must inflate it.
        await ws.send(json.dumps({"op": "subscribe", "id": 1, "channels": channels}))
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        messages = []
        while (left := end - loop.time()) > 0:
            try:
                text = await asyncio.wait_for(ws.recv(), left)
            except asyncio.TimeoutError:
                break
            messages.append(json.loads(text))
        return ext, messages


def keyed(messages):
    """Messages by (channel, type, seq), without `prev_seq`, which is per
    connection. A connection's first message of a channel (`prev_seq` 0) is
    left out: it is the state sent to that connection alone, whose `ts` is
    the pair's latest event's, so two clients that subscribed a moment
    apart may differ there."""
    return {
        (m["channel"], m["type"], m["seq"]): {k: v for k, v in m.items() if k != "prev_seq"}
        for m in messages
        if "seq" in m and m.get("prev_seq") != 0
    }


async def main():
    url, seconds, channels = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    (ext_d, got_d), (ext_p, got_p) = await asyncio.gather(
        client(url, "deflate", channels, seconds),
        client(url, None, channels, seconds),
    )
    a, b = keyed(got_d), keyed(got_p)
    common = a.keys() & b.keys()
    # Each mismatch names the fields that differ, for the failure message.
    mismatches = [
        list(k) + [sorted(f for f in a[k].keys() | b[k].keys() if a[k].get(f) != b[k].get(f))]
        for k in sorted(common)
        if a[k] != b[k]
    ]
    print(json.dumps({
        "deflate_extension": ext_d,
        "plain_extension": ext_p,
        "deflate_messages": len(got_d),
        "plain_messages": len(got_p),
        "deflate_subscribed": any(m.get("type") == "subscribed" for m in got_d),
        "common": len(common),
        "mismatches": mismatches[:5],
    }))


asyncio.run(main())
