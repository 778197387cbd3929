"""redis-py (Debian's python3-redis) runs one scenario against the server on
the port given, and prints one JSON line: every step's result, or
"error: <type>: <message>" for a step that raised. test/resp/redis-py.test.ts
runs it against kv-server and against redis-server and compares the lines.
"""
import json
import sys

import redis

port = int(sys.argv[1])
password = sys.argv[2] if len(sys.argv) > 2 else None
r = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=10)
out = []


def step(f):
    try:
        v = f()
        if isinstance(v, bytes):
            v = "bytes:" + v.hex()
        elif isinstance(v, (list, tuple)):
            v = [("bytes:" + x.hex()) if isinstance(x, bytes) else x for x in v]
        elif isinstance(v, dict):
            v = {k.decode() if isinstance(k, bytes) else k: (x.decode() if isinstance(x, bytes) else x) for k, x in v.items()}
        out.append(v)
    except redis.exceptions.RedisError as e:
        out.append("error: %s: %s" % (type(e).__name__, e))


step(lambda: r.flushall())
step(lambda: r.ping())
step(lambda: r.set("greeting", "hello"))
step(lambda: r.get("greeting"))
step(lambda: r.get("missing"))
step(lambda: r.set("greeting", "x", nx=True))
step(lambda: r.set("greeting", "hola", xx=True, get=True))
step(lambda: r.set("session", "v", ex=100))
step(lambda: r.ttl("session"))
step(lambda: r.set("session", "v", px=100000, keepttl=False))
step(lambda: r.set("session", "v", ex=0))
step(lambda: r.set("k", "v", exat=99999999999))
step(lambda: r.set("k", "v", keepttl=True))
step(lambda: r.setex("s2", 100, "v"))
step(lambda: r.psetex("s3", 100000, "v"))
step(lambda: r.setnx("greeting", "x"))
step(lambda: r.getset("greeting", "bonjour"))
step(lambda: r.getdel("greeting"))
step(lambda: r.getex("s2", persist=True))
step(lambda: r.getex("s2", ex=50))
step(lambda: r.ttl("s2"))
step(lambda: r.mset({"a": "1", "b": "2"}))
step(lambda: r.mget("a", "b", "missing"))
step(lambda: r.msetnx({"a": "9", "z": "9"}))
step(lambda: r.incr("counter"))
step(lambda: r.incrby("counter", 41))
step(lambda: r.decr("counter"))
step(lambda: r.decrby("counter", 2))
step(lambda: r.set("text", "abc"))
step(lambda: r.incr("text"))
step(lambda: r.append("text", "def"))
step(lambda: r.strlen("text"))
step(lambda: r.exists("a", "b", "missing"))
step(lambda: r.type("a"))
step(lambda: r.expire("a", 100))
step(lambda: r.expire("a", 100, nx=True))
step(lambda: r.pexpire("b", 100000))
step(lambda: r.pexpireat("b", 99999999999999))
step(lambda: r.expiretime("b"))
step(lambda: r.persist("b"))
step(lambda: r.ttl("b"))
step(lambda: r.pttl("missing"))
step(lambda: r.expire("b", -1))
step(lambda: r.exists("b"))
step(lambda: r.delete("counter", "missing"))
step(lambda: r.unlink("text"))
step(lambda: sorted(r.keys("*")))
step(lambda: sorted(r.scan_iter(match="*", count=2)))
step(lambda: r.dbsize())
step(lambda: r.echo("echo"))
step(lambda: r.client_setname("tester"))
step(lambda: r.client_getname())
step(lambda: r.client_id() > 0)
step(lambda: r.config_get("maxclients"))
step(lambda: r.execute_command("NOSUCH", "x"))
step(lambda: r.execute_command("GET"))
step(lambda: r.execute_command("SET", "k", "v", "EX", "abc"))
step(lambda: r.execute_command("EXPIRE", "a", "10", "NX", "XX"))
step(lambda: "db0" in r.info("keyspace"))
step(lambda: r.info("keyspace")["db0"]["keys"])
step(lambda: r.info()["loading"] if "loading" in r.info() else "no loading field")
p = r.pipeline(transaction=False)
p.set("p1", "a").get("p1").incr("p1").delete("p1").get("p1")
step(lambda: p.execute(raise_on_error=False) and [x if not isinstance(x, Exception) else "error: " + str(x) for x in p.execute(raise_on_error=False)])
step(lambda: r.flushdb())
step(lambda: r.dbsize())
print(json.dumps(out))
