#!/usr/bin/env python3
"""The IWAE paper's models (bench/compare/iwae_reference.py) trained in PyTorch on ilgpu-vae's own random numbers:
the same initial parameters, epoch order, dynamic binarization and epsilon, drawn with a numpy port of our
Philox4x32-10 keying (src/GpuKernels/Philox.cs, Shuffle.cs, ParameterLayout.Initialise). Only the arithmetic
differs from `ilgpu-vae train --preset PRESET --lr-schedule iwae-short --epochs N --seed S`, so the two runs'
losses show whether our kernels train as PyTorch's autograd does.

    python3 same_streams.py --data data/cache/mnist --model iwae --k 5 --layers 2 --epochs 1 [--float64]
"""
import math
import time

import numpy as np
import torch

import iwae_reference as ref

MASK = np.uint64(0xFFFFFFFF)
# Our streams (Philox.Streams): each use of randomness has its own.
REPARAMETERIZE, BINARIZE, SHUFFLE, INITIALISE, SECOND_LAYER_OFFSET = 1, 2, 5, 6, 16


def block(c0, c1, c2, c3, seed):
    """Philox4x32-10 on arrays of counters: the four output words, as uint64 arrays holding 32-bit values."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & MASK for c in (c0, c1, c2, c3))
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & MASK, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & MASK
        k0 = (k0 + np.uint64(0x9E3779B9)) & MASK
        k1 = (k1 + np.uint64(0xBB67AE85)) & MASK
    return c0, c1, c2, c3


def unit(bits):
    """Philox.ToUnitInterval: 23 bits plus a half step, in float32."""
    return ((bits >> np.uint64(9)).astype(np.float32) + np.float32(0.5)) * np.float32(1 / 8388608)


def uniform(seed, stream, step, count):
    return unit(block(np.arange(count, dtype=np.uint64), 0, step, stream, seed)[0])


def normal(seed, stream, step, count):
    b0, b1, _, _ = block(np.arange(count, dtype=np.uint64), 0, step, stream, seed)
    u1, u2 = unit(b0).astype(np.float64), unit(b1).astype(np.float64)
    return (np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)).astype(np.float32)


def permutation(count, seed, epoch):
    """Shuffle.Permutation: Fisher-Yates with multiply-shift draws."""
    order = np.arange(count)
    bits = block(np.arange(count, dtype=np.uint64), 0, epoch, SHUFFLE, seed)[0]
    for i in range(count - 1, 0, -1):
        j = int((int(bits[i]) * (i + 1)) >> 32)
        order[i], order[j] = order[j], order[i]
    return order


def initialise(model, seed):
    """ParameterLayout.Initialise: the flat buffer holds each layer's weight [out, in] then its bias, layers in the
    order the models declare them, each uniform in ±1/sqrt(fan_in) from the Initialise stream."""
    offset = 0
    for linear in (m for m in model.modules() if isinstance(m, torch.nn.Linear)):
        bound = np.float32(1) / np.sqrt(np.float32(linear.in_features))
        for tensor in (linear.weight, linear.bias):
            count = tensor.numel()
            draws = uniform(seed, INITIALISE, 0, offset + count)[offset:]
            tensor.data = torch.from_numpy(((np.float32(2) * draws - np.float32(1)) * bound).reshape(tensor.shape))
            offset += count


def main():
    parser = ref.arguments(__doc__, default_layers=2)
    parser.add_argument("--float64", action="store_true", help="train in double precision")
    parser.add_argument("--steps", type=int, default=0, help="stop each epoch after this many steps (0: all)")
    args = parser.parse_args()
    # A known answer of Random123's Philox4x32-10 (also in tests/PhiloxTests.cs) checks the port.
    assert [int(v) for v in block(np.array([0x243f6a88], dtype=np.uint64), 0x85a308d3, 0x13198a2e, 0x03707344,
                                  0x299f31d0a4093822)] == [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)  # only the test pass draws from torch
    dtype = torch.float64 if args.float64 else torch.float32
    model = ref.Model() if args.layers == 1 else ref.TwoLayerModel()
    initialise(model, args.seed)
    model = model.to(dtype)
    first_latent = model.latent if args.layers == 1 else 100
    train = ref.read_idx(ref.find(args.data, "train-images-idx3-ubyte")).reshape(-1, 784).numpy()
    grey = train.astype(np.float32) / np.float32(255)
    test = ref.read_idx(ref.find(args.data, "t10k-images-idx3-ubyte")).reshape(-1, 784).to(dtype) / 255
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-4)
    batch, k, step = 20, args.k, 0

    def log_weights(x, eps1, eps2):
        """log w [batch, k], and the VAE's objective (the mean over examples and samples)."""
        if args.layers == 1:
            stats = model.encoder(x)
            mu, logvar = stats[:, :first_latent].unsqueeze(1), stats[:, first_latent:].unsqueeze(1)
            z = mu + torch.exp(0.5 * logvar) * eps1
            logits = model.decoder(z)
            rec = torch.nn.functional.binary_cross_entropy_with_logits(logits, x.unsqueeze(1).expand_as(logits), reduction="none").sum(-1)
            kl = 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar).sum(-1)  # the one-layer VAE's KL is analytic
            return -rec - 0.5 * (z ** 2).sum(-1) - ref.gaussian_log_density(z, mu, logvar), rec.mean() + kl.mean()
        stats1 = model.encoder1(x)
        mu1, logvar1 = stats1[:, :100].unsqueeze(1), stats1[:, 100:].unsqueeze(1)
        z1 = mu1 + torch.exp(0.5 * logvar1) * eps1
        stats2 = model.encoder2(z1)
        mu2, logvar2 = stats2[..., :50], stats2[..., 50:]
        z2 = mu2 + torch.exp(0.5 * logvar2) * eps2
        prior = model.prior1(z2)
        logits = model.decoder(z1)
        rec = torch.nn.functional.binary_cross_entropy_with_logits(logits, x.unsqueeze(1).expand_as(logits), reduction="none").sum(-1)
        log_w = (-rec + ref.gaussian_log_density(z1, prior[..., :100], prior[..., 100:]) - 0.5 * (z2 ** 2).sum(-1)
                 - ref.gaussian_log_density(z1, mu1, logvar1) - ref.gaussian_log_density(z2, mu2, logvar2))
        return log_w, -log_w.mean()  # with two layers every KL term is sampled

    for epoch in range(1, args.epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = 1e-3 * 10 ** (-min(epoch - 1, 7) / 7)
        order = permutation(train.shape[0], args.seed, epoch)
        start, total = time.time(), 0.0
        steps = args.steps or train.shape[0] // batch
        for first in range(0, steps * batch, batch):
            step += 1
            u = uniform(args.seed, BINARIZE, step, batch * 784).reshape(batch, 784)
            x = torch.from_numpy(u < grey[order[first:first + batch]]).to(dtype)
            eps1 = torch.from_numpy(normal(args.seed, REPARAMETERIZE, step, batch * k * first_latent).reshape(batch, k, first_latent)).to(dtype)
            eps2 = None if args.layers == 1 else torch.from_numpy(
                normal(args.seed, REPARAMETERIZE + SECOND_LAYER_OFFSET, step, batch * k * 50).reshape(batch, k, 50)).to(dtype)
            log_w, vae_loss = log_weights(x, eps1, eps2)
            loss = -(torch.logsumexp(log_w, 1) - math.log(k)).mean() if args.model == "iwae" else vae_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        with torch.no_grad():
            test_total = 0.0
            for first in range(0, test.shape[0], 500):
                x = torch.bernoulli(test[first:first + 500])
                test_total += ref.loss(model, x, k if args.model == "iwae" else 1, args.model).item() * x.shape[0]
        print(f"epoch {epoch}: train loss {total / steps:.2f}, test loss {test_total / test.shape[0]:.2f} "
              f"({time.time() - start:.0f} s)", flush=True)
    print(f"active units: {ref.active_units(model.float(), test.float())}")


if __name__ == "__main__":
    main()
