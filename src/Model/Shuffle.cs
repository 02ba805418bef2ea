using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model;

/// <summary>Epoch orderings drawn from Philox, so a seed fixes every epoch's order on every machine.</summary>
public static class Shuffle
{
    /// <summary>A Fisher–Yates permutation of 0..count-1 for one epoch.</summary>
    public static int[] Permutation(int count, ulong seed, int epoch)
    {
        var order = new int[count];
        for (int i = 0; i < count; i++)
            order[i] = i;
        for (int i = count - 1; i > 0; i--)
        {
            Philox.Block((uint)i, 0, (uint)epoch, Philox.Streams.Shuffle, (uint)seed, (uint)(seed >> 32),
                out uint bits, out _, out _, out _);
            // Multiply-shift maps 32 random bits onto 0..i; the bias is at most (i+1)/2³², negligible here.
            int j = (int)(((ulong)bits * (ulong)(i + 1)) >> 32);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}
