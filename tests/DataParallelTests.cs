using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Distributed;

namespace IlgpuVae.Tests;

/// <summary>
/// Data parallelism without MPI: the slices of a minibatch, each drawn as the whole batch draws its examples and
/// weighted by its share, make the whole batch's gradient for every model whose objective is a mean of per-example
/// terms; ranks in threads (an in-process group) train as one process does, and repeat bit for bit.
/// (MpiTests runs the same through mpirun.)
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class DataParallelTests(AcceleratorFixture fixture)
{
    public static TheoryData<string> Configurations => new(VaeTests.ConfigurationNames);

    [Theory]
    [InlineData(1, 1, 0, 1)]
    [InlineData(7, 2, 0, 4)]
    [InlineData(7, 2, 1, 3)]
    [InlineData(7, 3, 2, 2)]
    [InlineData(1, 2, 1, 0)]
    [InlineData(128, 8, 7, 16)]
    public void SlicesFollowEachOtherInRankOrder(int batch, int size, int rank, int count)
    {
        var slices = Enumerable.Range(0, size).Select(r => BatchSlice.Of(batch, r, size)).ToArray();
        Assert.Equal(count, slices[rank].Count);
        Assert.Equal(batch, slices.Sum(slice => slice.Count));
        for (int r = 1; r < size; r++)
            Assert.Equal(slices[r - 1].Offset + slices[r - 1].Count, slices[r].Offset);
        Assert.True(slices.Max(slice => slice.Count) - slices.Min(slice => slice.Count) <= 1);
    }

    /// <summary>
    /// Every model of the VAE tests: the gradient of 7 examples against the share-weighted sum of the gradients of
    /// their slices over 2 and over 3 ranks, with binarization draws. Same draws, so they differ only by float
    /// rounding: each slice's mean and its weighting round differently from the whole batch's mean (a few ulps of
    /// the terms summed), far below the 1e-4 of the largest component allowed here; a slice drawn with its own
    /// positions' ε instead of the batch's moves the gradient by O(1) of its size. A model the data-parallel path
    /// refuses (an objective over the whole batch) is checked to be refused instead.
    /// </summary>
    [Theory]
    [MemberData(nameof(Configurations))]
    public void SliceGradientsWeightedByTheirSharesMakeTheBatchGradient(string configuration)
    {
        var config = VaeTests.Config(configuration);
        const int batch = 7;
        const long step = 3;
        var kernels = fixture.KernelSets[0];
        if (Vae.DataParallelRefusal(config) is { } reason)
        {
            var error = Assert.Throws<SettingException>(() => new Vae(kernels, config, batch, 5, ranks: new UnconnectedRanks(1, 2)));
            Assert.Equal(SettingException.Render(reason, name => name), error.Message);
            return;
        }
        var images = VaeTests.SyntheticImages(batch, 3, 4, 12);
        using var data = new DeviceDataset(kernels.Accelerator, images);
        using var vae = new Vae(kernels, config, batch, 5);
        vae.ComputeGradient(data, 0, batch, step, binarize: true);
        var whole = vae.GetGradients();
        double scale = whole.Max(Math.Abs);
        Assert.True(scale > 0, $"{configuration}: the gradient is zero, so nothing is compared");
        foreach (int size in new[] { 2, 3 })
        {
            var combined = new double[whole.Length];
            for (int rank = 0; rank < size; rank++)
            {
                var slice = BatchSlice.Of(batch, rank, size);
                vae.ComputeGradient(data, slice.Offset, slice.Count, step, binarize: true, firstExample: slice.Offset);
                var part = vae.GetGradients();
                for (int i = 0; i < part.Length; i++)
                    combined[i] += (double)slice.Count / batch * part[i];
            }
            int worst = Enumerable.Range(0, whole.Length).MaxBy(i => Math.Abs(combined[i] - whole[i]));
            Assert.True(Math.Abs(combined[worst] - whole[worst]) <= 1e-4 * scale,
                $"{configuration}, {size} ranks: parameter {worst}: slices give {combined[worst]}, the batch {whole[worst]} (largest component {scale})");
        }
    }

    /// <summary>
    /// Two ranks in threads, each with its own CPU accelerator, train 3 shuffled epochs of 29 examples in batches of
    /// 8 (a short last batch of 5, split 3 + 2) with dynamic binarization and gradient clipping, then score the test
    /// pass; one process trains the same. The ranks end with the same weights bit for bit (the same combined
    /// gradient and Adam step on each), a second 2-rank run repeats them bit for bit, and one process's weights are
    /// within 1e-4 of theirs: they differ only in how each mean gradient was rounded, and Adam's step of ≤ lr = 1e-3
    /// per step moves a weight by a small fraction of that when its gradient changes by rounding.
    /// </summary>
    [Fact]
    public void TwoRanksInThreadsTrainAsOneProcess()
    {
        var config = new VaeConfig { InputSize = 12, Hidden = [7], Latent = 3, Samples = 2 };
        var adam = new AdamSettings { MaxGradientNorm = 5 };
        var one = Train(config, adam, new UnconnectedRanks(0, 1));
        var first = InThreads(2, ranks => Train(config, adam, ranks));
        var second = InThreads(2, ranks => Train(config, adam, ranks));
        Assert.Equal(first[0].Parameters, first[1].Parameters);
        Assert.Equal(first[0].Parameters, second[0].Parameters);
        Assert.Equal(first[0].Sums, second[0].Sums);
        Assert.Equal(first[0].Sums, first[1].Sums);
        Numerics.AssertClose("2 ranks against 1 process", Numerics.ToDouble(one.Parameters), first[0].Parameters, 1e-4, 0);
        Assert.Equal(one.Sums.Examples, first[0].Sums.Examples);
        Assert.Equal(one.Sums.MeanLoss, first[0].Sums.MeanLoss, 1e-4 * Math.Abs(one.Sums.MeanLoss));
    }

    private static (float[] Parameters, LossSums Sums) Train(VaeConfig config, AdamSettings adam, Communicator ranks)
    {
        const int count = 29, batch = 8;
        const ulong seed = 9;
        var images = VaeTests.SyntheticImages(count, 3, 4, 21);
        // Each rank its own context and CPU accelerator, as each MPI process has.
        using var context = Compute.CreateContext();
        using var accelerator = Compute.CreateAccelerator(context, AcceleratorChoice.Cpu);
        using var kernels = new KernelSet(accelerator);
        using var data = new DeviceDataset(accelerator, images);
        using var vae = new Vae(kernels, config, batch, seed, adam, ranks);
        for (int epoch = 1; epoch <= 3; epoch++)
        {
            data.SetOrder(Shuffle.Permutation(count, seed, epoch));
            Epoch.Train(vae, data, batch, binarize: true, tickInterval: 2);
        }
        data.SetOrder(Enumerable.Range(0, count).ToArray());
        var sums = Epoch.Evaluate(vae, data, batch, epoch: 3);
        return (vae.GetParameters(), sums);
    }

    private static T[] InThreads<T>(int size, Func<Communicator, T> work)
    {
        var group = new ThreadGroup(size);
        var results = new T[size];
        var failures = new Exception?[size];
        var threads = Enumerable.Range(0, size).Select(rank => new Thread(() =>
        {
            try
            {
                results[rank] = work(group.Rank(rank));
            }
            catch (Exception exception)
            {
                failures[rank] = exception;
            }
        })).ToArray();
        foreach (var thread in threads)
            thread.Start();
        foreach (var thread in threads)
            Assert.True(thread.Join(TimeSpan.FromMinutes(5)), $"a rank did not finish: {failures.FirstOrDefault(f => f is not null)}");
        if (failures.FirstOrDefault(f => f is not null) is { } failure)
            throw new InvalidOperationException("a rank failed", failure);
        return results;
    }

    /// <summary>Ranks that never communicate: for a model that must refuse several ranks before any call, and for
    /// the group of one.</summary>
    private sealed class UnconnectedRanks(int rank, int size) : Communicator
    {
        public override int Rank => rank;
        public override int Size => size;
        public override string Description => "unconnected";

        public override void AllGather(ReadOnlySpan<float> mine, Span<float> all) => Gather(mine, all);
        public override void AllGather(ReadOnlySpan<double> mine, Span<double> all) => Gather(mine, all);
        public override void Broadcast(Span<byte> bytes, int root) => Gather<byte>(bytes, bytes);

        private void Gather<T>(ReadOnlySpan<T> mine, Span<T> all)
        {
            if (size != 1)
                throw new InvalidOperationException("these ranks cannot communicate");
            mine.CopyTo(all);
        }
    }

    /// <summary>Ranks as threads of one process, meeting at a barrier: the collective calls' semantics without MPI.</summary>
    private sealed class ThreadGroup(int size)
    {
        private readonly Barrier barrier = new(size);
        private readonly object[] posted = new object[size];

        public Communicator Rank(int rank) => new Member(this, rank);

        private void Exchange<T>(int rank, ReadOnlySpan<T> mine, Span<T> all)
        {
            posted[rank] = mine.ToArray();
            barrier.SignalAndWait();
            for (int r = 0; r < size; r++)
                ((T[])posted[r]).CopyTo(all.Slice(r * mine.Length, mine.Length));
            barrier.SignalAndWait(); // nobody posts again before everyone has read
        }

        private sealed class Member(ThreadGroup group, int rank) : Communicator
        {
            public override int Rank => rank;
            public override int Size => group.posted.Length;
            public override string Description => "threads";
            public override void AllGather(ReadOnlySpan<float> mine, Span<float> all) => group.Exchange(rank, mine, all);
            public override void AllGather(ReadOnlySpan<double> mine, Span<double> all) => group.Exchange(rank, mine, all);

            public override void Broadcast(Span<byte> bytes, int root)
            {
                var all = new byte[bytes.Length * Size];
                group.Exchange<byte>(rank, bytes, all);
                all.AsSpan(root * bytes.Length, bytes.Length).CopyTo(bytes);
            }
        }
    }
}
