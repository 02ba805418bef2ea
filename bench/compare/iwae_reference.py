#!/usr/bin/env python3
"""An independent PyTorch implementation of the IWAE paper's models, to check `ilgpu-vae train --preset
iwae-1layer-kK` (or vae-1layer-kK, iwae-2layer-kK, vae-2layer-kK) end to end: 784-200-200-50 tanh, or with
--layers 2 784-200-200-100(z1)-100-100-50(z2); Bernoulli logits, dynamic binarization, batch 20, Adam (lr 1e-3,
eps 1e-4), PyTorch's default initialisation, and the paper's learning rates one epoch each (the short
schedule). After each epoch it prints the test loss as `train` reports it: -L_k with the training k for the
IWAE, the one-sample ELBO for the VAE (dynamically binarized test images). With two layers every KL term is
sampled through log w, as in the paper (and in ilgpu-vae).

    python3 iwae_reference.py --data data/cache/mnist --model iwae --k 5 --epochs 1 [--layers 2]
"""
import argparse
import gzip
import math
import os
import struct
import time

import torch
import torch.nn as nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        dims = f.read(4)[3]  # magic: two zero bytes, the type (0x08: bytes), the number of dimensions
        shape = struct.unpack(">" + "I" * dims, f.read(4 * dims))
        return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).reshape(shape)


def find(directory, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    raise SystemExit(f"{stem} not found in {directory}")


class Model(nn.Module):
    def __init__(self, hidden=200, latent=50):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(784, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                     nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                     nn.Linear(hidden, 784))
        self.latent = latent

    def log_weights(self, x, k):
        """log w [batch, k] and the analytic KL [batch]."""
        stats = self.encoder(x)
        mu, logvar = stats[:, :self.latent], stats[:, self.latent:]
        eps = torch.randn(x.shape[0], k, self.latent)
        z = mu.unsqueeze(1) + torch.exp(0.5 * logvar).unsqueeze(1) * eps
        logits = self.decoder(z)
        rec = nn.functional.binary_cross_entropy_with_logits(logits, x.unsqueeze(1).expand_as(logits), reduction="none").sum(-1)
        log_prior = -0.5 * (z ** 2).sum(-1)
        log_q = -0.5 * (eps ** 2 + logvar.unsqueeze(1)).sum(-1)
        kl = 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar).sum(-1)
        return -rec + log_prior - log_q, rec, kl


def mlp(sizes):
    """Linear layers of the given widths with tanh between them (none after the last)."""
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def gaussian_log_density(z, mu, logvar):
    """log N(z; mu, exp(logvar)) summed over the last axis, without the 2*pi term (it cancels in log w)."""
    return -0.5 * (logvar + (z - mu) ** 2 / logvar.exp()).sum(-1)


class TwoLayerModel(nn.Module):
    """q(z1|x) q(z2|z1) and p(z2) p(z1|z2) p(x|z1), the paper's two-stochastic-layer architecture."""

    def __init__(self):
        super().__init__()
        self.encoder1 = mlp([784, 200, 200, 200])
        self.encoder2 = mlp([100, 100, 100, 100])
        self.prior1 = mlp([50, 100, 100, 200])
        self.decoder = mlp([100, 200, 200, 784])

    def log_weights(self, x, k):
        """log w [batch, k]; no analytic KL (every term is sampled)."""
        stats1 = self.encoder1(x)
        mu1, logvar1 = stats1[:, :100].unsqueeze(1), stats1[:, 100:].unsqueeze(1)
        z1 = mu1 + torch.exp(0.5 * logvar1) * torch.randn(x.shape[0], k, 100)
        stats2 = self.encoder2(z1)
        mu2, logvar2 = stats2[..., :50], stats2[..., 50:]
        z2 = mu2 + torch.exp(0.5 * logvar2) * torch.randn(x.shape[0], k, 50)
        prior_stats = self.prior1(z2)
        logits = self.decoder(z1)
        rec = nn.functional.binary_cross_entropy_with_logits(logits, x.unsqueeze(1).expand_as(logits), reduction="none").sum(-1)
        log_p = -rec + gaussian_log_density(z1, prior_stats[..., :100], prior_stats[..., 100:]) - 0.5 * (z2 ** 2).sum(-1)
        log_q = gaussian_log_density(z1, mu1, logvar1) + gaussian_log_density(z2, mu2, logvar2)
        return log_p - log_q, rec, None


def loss(model, x, k, kind):
    """The batch mean of the objective: -L_k (iwae) or rec averaged over k samples + KL (vae)."""
    log_w, rec, kl = model.log_weights(x, k)
    if kind == "iwae":
        return -(torch.logsumexp(log_w, dim=1) - math.log(k)).mean()
    if kl is None:
        return -log_w.mean()
    return rec.mean() + kl.mean()


def arguments(description, default_layers):
    """The options this script shares with same_streams.py: data, objective, k, layers, epochs, seed."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", choices=["iwae", "vae"], default="iwae")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--layers", type=int, choices=[1, 2], default=default_layers)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    return parser


def main():
    parser = arguments(__doc__, default_layers=1)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = read_idx(find(args.data, "train-images-idx3-ubyte")).reshape(-1, 784).float() / 255
    test = read_idx(find(args.data, "t10k-images-idx3-ubyte")).reshape(-1, 784).float() / 255
    model = Model() if args.layers == 1 else TwoLayerModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-4)
    for epoch in range(1, args.epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = 1e-3 * 10 ** (-min(epoch - 1, 7) / 7)
        start = time.time()
        order = torch.randperm(train.shape[0])
        for first in range(0, train.shape[0], 20):
            x = torch.bernoulli(train[order[first:first + 20]])
            optimizer.zero_grad()
            loss(model, x, args.k, args.model).backward()
            optimizer.step()
        with torch.no_grad():
            total = 0.0
            for first in range(0, test.shape[0], 500):
                x = torch.bernoulli(test[first:first + 500])
                k = args.k if args.model == "iwae" else 1
                total += loss(model, x, k, args.model).item() * x.shape[0]
        print(f"epoch {epoch}: test loss {total / test.shape[0]:.2f} ({time.time() - start:.0f} s)", flush=True)
    print(f"active units (variance over the test set of the top layer's mean > 0.01): {active_units(model, test)}")


def active_units(model, images):
    """Burda et al.'s activity statistic on the top latent layer, with the mean of q(z2|x) taken at z1 = mu1."""
    with torch.no_grad():
        if isinstance(model, TwoLayerModel):
            mu = model.encoder2(model.encoder1(images)[:, :100])[:, :50]
        else:
            mu = model.encoder(images)[:, :model.latent]
        return f"{int((mu.var(dim=0) > 0.01).sum())} of {mu.shape[1]}"


if __name__ == "__main__":
    main()
