#!/usr/bin/python3
"""PyTorch DistributedDataParallel (gloo, CPU, one thread per process) on the MLP, as the baseline `daprtrain bench
--only pytorch` measures DaprTrain against: N processes each train on their own contiguous shard of the training rows,
batch B per process, Adam at LR, for ROUNDS rounds; rank 0 prints one JSON line: the wall time per round (rounds after
the first 5, which warm up), and the held-out accuracy of the final weights.

Usage: ddp_bench.py DIR WORKERS ROUNDS BATCH LR
DIR holds train.f32 (rows x 784, normalised as DaprTrain normalises), train.i64 (labels), holdout.f32, holdout.i64.
Runs on Debian's python3-torch (1.13) with /usr/bin/python3.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

WARMUP = 5


def load(folder, name):
    x = torch.from_numpy(np.fromfile(os.path.join(folder, name + ".f32"), dtype="<f4").reshape(-1, 28 * 28))
    y = torch.from_numpy(np.fromfile(os.path.join(folder, name + ".i64"), dtype="<i8"))
    return x, y


def run(rank, folder, workers, rounds, batch, lr):
    torch.set_num_threads(1)
    torch.manual_seed(1)
    dist.init_process_group("gloo", init_method="file://" + os.path.join(folder, "rendezvous"), rank=rank, world_size=workers)
    x, y = load(folder, "train")
    shard = torch.arange(rank, x.shape[0], workers)
    net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 10))
    ddp = DistributedDataParallel(net)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(rank + 1)
    started = None
    for r in range(rounds):
        if r == WARMUP:
            dist.barrier()
            started = time.perf_counter()
        batch_rows = shard[torch.randint(0, shard.numel(), (batch,), generator=generator)]
        optimizer.zero_grad()
        F.cross_entropy(ddp(x[batch_rows]), y[batch_rows]).backward()
        optimizer.step()
    dist.barrier()
    elapsed = time.perf_counter() - started
    if rank == 0:
        hx, hy = load(folder, "holdout")
        with torch.no_grad():
            accuracy = (net(hx).argmax(1) == hy).float().mean().item()
        print(json.dumps({"torch": torch.__version__, "workers": workers, "msPerRound": 1000 * elapsed / (rounds - WARMUP), "accuracy": accuracy}))
    dist.destroy_process_group()


def main():
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    folder, workers, rounds, batch, lr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    if rounds <= WARMUP:
        raise SystemExit(f"ROUNDS must exceed the {WARMUP} warm-up rounds")
    if os.path.exists(os.path.join(folder, "rendezvous")):
        os.remove(os.path.join(folder, "rendezvous"))
    mp.spawn(run, args=(folder, workers, rounds, batch, lr), nprocs=workers, join=True)


if __name__ == "__main__":
    main()
