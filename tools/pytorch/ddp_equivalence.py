#!/usr/bin/python3
"""PyTorch DistributedDataParallel (gloo, CPU) on exactly what a DaprTrain run used, as an independent check of its
training step: the same initial weights, the same per-worker sample indices each round, the same model (784-H-10 MLP)
and optimizer. Writes the final weights in DaprTrain's flat order (fc1.weight, fc1.bias, fc2.weight, fc2.bias).

Usage: ddp_equivalence.py DIR
DIR holds spec.json ({"workers", "rounds", "batch", "hidden", "optimizer": "sgd"|"adam", "lr", "momentum"}) and raw
little-endian arrays: weights.f32 (the initial flat weights), features.f32 (samples x 784, already normalised as
DaprTrain normalises them), labels.i64, indices.i64 (rounds x workers x batch, rows of features). It writes final.f32.
Runs on Debian's python3-torch (1.13) with /usr/bin/python3; no other package.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel


def model(hidden):
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def load_flat(module, flat):
    offset = 0
    with torch.no_grad():
        for p in module.parameters():
            n = p.numel()
            p.copy_(torch.from_numpy(flat[offset:offset + n]).view_as(p))
            offset += n
    if offset != flat.size:
        raise SystemExit(f"the weights file has {flat.size} values; the model has {offset}")


def run(rank, folder, spec):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="file://" + os.path.join(folder, "rendezvous"), rank=rank, world_size=spec["workers"])
    features = torch.from_numpy(np.fromfile(os.path.join(folder, "features.f32"), dtype="<f4").reshape(-1, 28 * 28))
    labels = torch.from_numpy(np.fromfile(os.path.join(folder, "labels.i64"), dtype="<i8"))
    indices = np.fromfile(os.path.join(folder, "indices.i64"), dtype="<i8").reshape(spec["rounds"], spec["workers"], spec["batch"])
    net = model(spec["hidden"])
    load_flat(net, np.fromfile(os.path.join(folder, "weights.f32"), dtype="<f4"))
    ddp = DistributedDataParallel(net)
    if spec["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(ddp.parameters(), lr=spec["lr"], momentum=spec["momentum"])
    else:
        optimizer = torch.optim.Adam(ddp.parameters(), lr=spec["lr"])
    for r in range(spec["rounds"]):
        batch = torch.from_numpy(indices[r, rank])
        optimizer.zero_grad()
        loss = F.cross_entropy(ddp(features[batch]), labels[batch])
        loss.backward()  # DDP averages the gradients over the workers (all-reduce), as DaprTrain's p2p mean does
        optimizer.step()
    if rank == 0:
        flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).numpy().astype("<f4")
        flat.tofile(os.path.join(folder, "final.f32"))
    dist.destroy_process_group()


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    folder = sys.argv[1]
    with open(os.path.join(folder, "spec.json")) as f:
        spec = json.load(f)
    mp.spawn(run, args=(folder, spec), nprocs=spec["workers"], join=True)
    print(f"torch {torch.__version__}: DDP gloo, {spec['workers']} workers, {spec['rounds']} rounds of {spec['optimizer']}")


if __name__ == "__main__":
    main()
