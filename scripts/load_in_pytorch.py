#!/usr/bin/env python3
"""Load an IlgpuVae checkpoint into the PyTorch VAE example's model and evaluate it on MNIST.

    python3 scripts/load_in_pytorch.py RUN_DIR [--data data/cache/mnist] [--examples 10000]

It reads RUN_DIR/checkpoint/model.safetensors with Hugging Face's `safetensors` package when it is installed,
else with the small standard-library reader below (the format is an 8-byte header length, a JSON header and raw
little-endian data), maps our tensor names onto the example's layers (encoder.0 -> fc1, encoder.mu -> fc21,
encoder.logvar -> fc22, decoder.0 -> fc3, decoder.out -> fc4; shapes are already nn.Linear's [out, in]), and
prints the test loss with z = mu (deterministic) and with one sampled z per image, as the example computes it.
Works for the default architecture (one hidden layer, Bernoulli decoder).
"""
import argparse
import gzip
import json
import os
import struct
import sys


def read_safetensors(path):
    """name -> (shape, list of floats), from the specification alone."""
    with open(path, "rb") as file:
        data = file.read()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_length])
    start = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {entry['dtype']}, expected F32")
        begin, end = entry["data_offsets"]
        count = (end - begin) // 4
        values = struct.unpack(f"<{count}f", data[start + begin:start + end])
        tensors[name] = (entry["shape"], values)
    return tensors


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as file:
        data = file.read()
    dims = data[3]
    shape = struct.unpack(f">{dims}I", data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


NAMES = {"encoder.0": "fc1", "encoder.mu": "fc21", "encoder.logvar": "fc22", "decoder.0": "fc3", "decoder.out": "fc4"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "cache", "mnist"))
    parser.add_argument("--examples", type=int, default=10000)
    args = parser.parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class VAE(nn.Module):  # the PyTorch VAE example's model
        def __init__(self, hidden=400, latent=20):
            super().__init__()
            self.fc1 = nn.Linear(784, hidden)
            self.fc21 = nn.Linear(hidden, latent)
            self.fc22 = nn.Linear(hidden, latent)
            self.fc3 = nn.Linear(latent, hidden)
            self.fc4 = nn.Linear(hidden, 784)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def decode(self, z):
            return self.fc4(F.relu(self.fc3(z)))  # logits

    path = os.path.join(args.run, "checkpoint", "model.safetensors")
    try:
        from safetensors.torch import load_file
        ours = load_file(path)
        reader = "safetensors"
    except ImportError:
        ours = {name: torch.tensor(values, dtype=torch.float32).reshape(shape)
                for name, (shape, values) in read_safetensors(path).items()}
        reader = "the standard-library reader"
    state = {}
    for name, tensor in ours.items():
        layer, kind = name.rsplit(".", 1)
        state[f"{NAMES[layer]}.{kind}"] = tensor
    hidden, latent = state["fc1.weight"].shape[0], state["fc21.weight"].shape[0]
    model = VAE(hidden, latent)
    model.load_state_dict(state)
    model.eval()

    images = os.path.join(args.data, "t10k-images-idx3-ubyte")
    if not os.path.exists(images):
        images += ".gz"
    shape, pixels = read_idx(images)
    count = min(args.examples, shape[0])
    x = torch.tensor(list(pixels[:count * 784]), dtype=torch.float32).reshape(count, 784) / 255.0
    with torch.no_grad():
        mu, logvar = model.encode(x)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / count
        rec_mean = F.binary_cross_entropy_with_logits(model.decode(mu), x, reduction="sum") / count
        torch.manual_seed(0)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        rec_sampled = F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="sum") / count
    print(f"loaded {path} with {reader} into the PyTorch VAE example ({hidden} hidden, {latent} latent)")
    print(f"{count} test images: reconstruction with z = mu {rec_mean.item():.4f}, KL {kl.item():.4f}, "
          f"test loss with one sampled z {rec_sampled.item() + kl.item():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
