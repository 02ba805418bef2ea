#!/usr/bin/env python3
"""The baseline for `ilgpu-vae bench`: the PyTorch VAE example's model (784-400-20-400-784, ReLU, Bernoulli
logits, Adam 1e-3), the same batch and the same MNIST-shaped random bytes resident on the device, trained for the
same number of steps with the same quarter-epoch loss reads. Prints one CSV row.

    python3 pytorch_vae.py --device cuda --mode eager
    python3 pytorch_vae.py --device cuda --mode compile     # torch.compile(mode="max-autotune"), torch >= 2
"""
import argparse
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

EXAMPLES_PER_EPOCH = 60_000


class VAE(nn.Module):
    def __init__(self, hidden=400, latent=20):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def forward(self, x):
        h1 = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def loss_sums(model, x):
    logits, mu, logvar = model(x)
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return rec, kl


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--mode", choices=["eager", "compile"], default="eager")
    parser.add_argument("--steps", type=int, default=469)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(1)
    count = args.steps * args.batch_size
    data = torch.randint(0, 256, (count, 784), dtype=torch.uint8, device=device)
    model = VAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    compute_loss_sums = loss_sums
    if args.mode == "compile":
        if not hasattr(torch, "compile"):
            print(f"torch {torch.__version__} has no torch.compile", file=sys.stderr)
            return 2
        compute_loss_sums = torch.compile(loss_sums, mode="max-autotune")

    def step(x):
        rec, kl = compute_loss_sums(model, x)
        loss = (rec + kl) / x.shape[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return rec.detach() + kl.detach()

    def batch(index):
        rows = data[index * args.batch_size:(index + 1) * args.batch_size]
        return rows.float() / 255.0

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for index in range(args.warmup):
        step(batch(index % args.steps))
    synchronize()

    total = torch.zeros((), device=device)
    tick = max(1, args.steps // 4)
    start = time.perf_counter()
    for index in range(args.steps):
        total += step(batch(index))
        if (index + 1) % tick == 0 and index + 1 < args.steps:
            total.item()  # the quarter-epoch progress read, as in ilgpu-vae
    total.item()
    synchronize()
    seconds = time.perf_counter() - start

    steps_per_epoch = -(-EXAMPLES_PER_EPOCH // args.batch_size)
    name = f"pytorch {torch.__version__} {args.mode} on {device.type}"
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    else:
        name += f" ({torch.get_num_threads()} threads)"
    print("framework,batch,steps,seconds,samples_per_second,ms_per_epoch")
    print(f"{name},{args.batch_size},{args.steps},{seconds:.4f},{count / seconds:.1f},"
          f"{1000 * seconds / args.steps * steps_per_epoch:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
