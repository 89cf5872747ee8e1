#!/usr/bin/env python3
"""Hostile-input probe of the model server: RSS (VmRSS, VmHWM from /proc) idle and under
a 27 MB JSON body, 20 concurrent ones, and trickled bodies. Loopback only.
usage: hostile-probe.py SERVER_BIN_DIR MODEL PORT [server options]; PROBE_NUM sets how each pixel is written (default 0).
The numbers in BENCHMARKS.md ("Model server under hostile input") come from it."""
import os, socket, subprocess, sys, threading, time

server_dir, model, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
extra = sys.argv[4:]
proc = subprocess.Popen(["dotnet", os.path.join(server_dir, "DaprTrain.Serving.dll"), "--Serving:ModelPath", model,
                         "--urls", f"http://127.0.0.1:{port}", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def rss():
    d = {}
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                d[k] = int(v.split()[0]) // 1024
    return d

def post(body, content_type="application/json", timeout=120, chunked=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
        s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{framing}\r\nConnection: close\r\n\r\n".encode())
        try:
            if chunked:
                for i in range(0, len(body), 65536):
                    part = body[i:i + 65536]
                    s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            else:
                s.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return data.split(b"\r\n", 1)[0].decode(errors="replace")
    finally:
        s.close()

for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
    except OSError:
        time.sleep(0.2)
time.sleep(1)
# one legitimate request first, so that idle includes a warmed-up model
row = "[" + ",".join(["0"] * 784) + "]"
print("legit:", post(("{\"images\": [" + ",".join([row] * 10) + "]}").encode()))
time.sleep(2)
print("idle:", rss())

# a 27 MB JSON body: 1,400 images of 784 pixels written as long numbers (within Kestrel's default 30 MB)
num = os.environ.get("PROBE_NUM", "0")
big_row = "[" + ",".join([num] * 784) + "]"
n = 27_000_000 // len(big_row)
big = ("{\"images\": [" + ",".join([big_row] * n) + "]}").encode()
print(f"27 MB body ({len(big):,} bytes):", post(big), rss())
time.sleep(2)
print("after one, settled:", rss())

# 20 concurrent 27 MB bodies
results = []
threads = [threading.Thread(target=lambda: results.append(post(big))) for _ in range(20)]
t0 = time.time()
for t in threads: t.start()
for t in threads: t.join()
print(f"20 concurrent ({time.time() - t0:.1f} s):", sorted(set(results)), rss())
time.sleep(2)
print("after 20, settled:", rss())

# the same, chunked (no Content-Length: the server must read before it can refuse)
print("27 MB chunked:", post(big, chunked=True), rss())
results = []
threads = [threading.Thread(target=lambda: results.append(post(big, chunked=True))) for _ in range(20)]
t0 = time.time()
for t in threads: t.start()
for t in threads: t.join()
print(f"20 concurrent chunked ({time.time() - t0:.1f} s):", sorted(set(results)), rss())
# 20 concurrent legitimate bodies of the most images allowed (256), as JSON
full = ("{\"images\": [" + ",".join([row] * 256) + "]}").encode()
results = []
threads = [threading.Thread(target=lambda: results.append(post(full))) for _ in range(20)]
for t in threads: t.start()
for t in threads: t.join()
print(f"20 concurrent legit 256-image JSON ({len(full):,} bytes):", sorted(set(results)), rss())
time.sleep(2)
print("settled:", rss())

# trickled bodies: 300 connections each sending a 100 kB JSON body at 300 B/s for up to 20 s
TRICKLE, SECONDS = 300, 20
held = [0] * TRICKLE
def trickle(i):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return
    try:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"images\": [[")
        start = time.time()
        while time.time() - start < SECONDS:
            s.sendall(b"0," * 15)
            time.sleep(0.1)
        held[i] = 1
    except OSError:
        held[i] = 0
    finally:
        s.close()
threads = [threading.Thread(target=trickle, args=(i,)) for i in range(TRICKLE)]
t0 = time.time()
for t in threads: t.start()
time.sleep(SECONDS / 2)
mid = rss()
legit_during = post(("{\"images\": [" + row + "]}").encode(), timeout=30)
for t in threads: t.join()
print(f"trickle: {TRICKLE} connections at 300 B/s; still held after {SECONDS} s: {sum(held)}; mid:", mid, "legit during:", legit_during, "end:", rss())
time.sleep(2)
print("final:", rss())
proc.terminate()
proc.wait()
