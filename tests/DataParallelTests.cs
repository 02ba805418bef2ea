using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Distributed;
using ILGPU.Runtime;

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

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(784)]
    [InlineData(100_003)]
    public void ScaleInPlaceMatchesItsReferenceBitForBit(int count)
    {
        // A float product is correctly rounded, as is the double product of two floats rounded once: equal bits.
        var random = new Random(count);
        var values = Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        foreach (var kernels in fixture.KernelSets)
            foreach (float share in new[] { 3f / 7, 0.5f, 1f })
            {
                using var buffer = kernels.Accelerator.Allocate1D(values);
                kernels.ScaleInPlace(buffer.View, share);
                Assert.Equal(GpuKernels.Reference.CollectiveReference.Scale(values, share), buffer.GetAsArray1D());
            }
    }

    /// <summary>Buckets run from the last layer down, each a contiguous run of whole layers of at least the size asked
    /// for (but the last), together covering every layer's parameters once.</summary>
    [Theory]
    [InlineData("vae-2layer-k2", 1L)]
    [InlineData("vae-2layer-k2", 1_000L)]
    [InlineData("ladder-4-k2-gaussian", 4_000L)]
    [InlineData("hvm-inverse-flow-2", 1L << 30)]
    public void BucketsCoverEveryLayerOnceFromTheLastDown(string configuration, long bucketBytes)
    {
        var layout = new ParameterLayout(VaeTests.Config(configuration));
        var buckets = BucketedGradientExchange.Plan(layout, bucketBytes);
        Assert.Equal(layout.Layers.Count - 1, buckets[0].LastLayer);
        Assert.Equal(0, buckets[^1].FirstLayer);
        for (int i = 0; i < buckets.Count; i++)
        {
            var bucket = buckets[i];
            Assert.Equal(i, bucket.Index);
            Assert.Equal(layout.Layers[bucket.FirstLayer].WeightOffset, bucket.Start);
            Assert.Equal(layout.Layers[bucket.LastLayer].End, bucket.Start + bucket.Count);
            if (i > 0)
                Assert.Equal(bucket.LastLayer + 1, buckets[i - 1].FirstLayer);
            if (i < buckets.Count - 1)
                Assert.True(bucket.Count * 4L >= bucketBytes, $"bucket {i}: {bucket.Count * 4} bytes");
        }
        if (bucketBytes == 1)
            Assert.Equal(layout.Layers.Count, buckets.Count);
        if (bucketBytes == 1L << 30)
            Assert.Single(buckets);
    }

    /// <summary>
    /// Every model the data-parallel path takes: with a bucket per layer, each bucket is sent (here: copied to the
    /// host at that point of the stream) once a step, in order, and what was sent is the gradient when the exchange
    /// ends, so no layer's gradient changes after the backward pass reports it and a device all-reduce sent from the
    /// report sums final values (the weight prior's term is added after the exchange, the same on every rank). For the plain VAE at least one bucket goes before the pass
    /// ends (the overlap). The exchange of one rank changes nothing: the weights are those of a run without it.
    /// </summary>
    [Theory]
    [MemberData(nameof(Configurations))]
    public void BucketsAreSentOnlyAfterTheirLayersLastWrite(string configuration)
    {
        var config = VaeTests.Config(configuration);
        if (Vae.DataParallelRefusal(config) is not null)
            return; // refused (see above): never trained over ranks
        const int batch = 6, examples = 13;
        var kernels = fixture.KernelSets[0];
        var images = VaeTests.SyntheticImages(examples, 3, 4, 5);
        using var data = new DeviceDataset(kernels.Accelerator, images);
        using var plain = new Vae(kernels, config, batch, 3);
        using var recorded = new Vae(kernels, config, batch, 3);
        RecordingExchange? exchange = null;
        recorded.UseGradientExchange(buffers => exchange = new RecordingExchange(buffers));
        for (int step = 0; step < 3; step++)
        {
            int first = step * batch % (examples - batch);
            plain.TrainStep(data, first, batch, binarize: true);
            recorded.TrainStep(data, first, batch, binarize: true);
            var final = exchange!.AtComplete;
            Assert.Equal(Enumerable.Range(0, exchange!.Buckets.Count), exchange.Sent.Select(sent => sent.Bucket.Index));
            foreach (var (bucket, values, _) in exchange.Sent)
                Assert.True(values.SequenceEqual(final.AsSpan(bucket.Start, bucket.Count).ToArray()),
                    $"{configuration}: layers {bucket.FirstLayer}..{bucket.LastLayer} changed after they were reported");
            if (configuration == "bernoulli-relu")
                Assert.Contains(exchange.Sent, sent => sent.DuringPass);
            exchange.Sent.Clear();
        }
        Assert.Equal(plain.GetParameters(), recorded.GetParameters());
    }

    /// <summary>
    /// The bucketed exchange over two ranks in threads, with a sum over the ranks standing in for NCCL's
    /// all-reduce: each bucket scaled by the rank's share and summed in place. The ranks end equal to each other and
    /// within 1e-4 of the host path's run (the same sums, rounded in another order: the share is applied in float
    /// before adding, not in double after).
    /// </summary>
    [Fact]
    public void BucketedExchangeOverTwoRanksTrainsAsTheHostPath()
    {
        var config = new VaeConfig { InputSize = 12, Hidden = [7], Latent = 3, Samples = 2 };
        var adam = new AdamSettings();
        var host = InThreads(2, ranks => Train(config, adam, ranks));
        var bucketed = InThreads(2, ranks => Train(config, adam, ranks, buffers => new SummingExchange(buffers)));
        Assert.Equal(bucketed[0].Parameters, bucketed[1].Parameters);
        Numerics.AssertClose("bucketed against host exchange", Numerics.ToDouble(host[0].Parameters), bucketed[0].Parameters, 1e-4, 0);
    }

    /// <summary>Records each bucket as it is sent: its values at that point of the stream, and whether the backward
    /// pass was still running.</summary>
    private sealed class RecordingExchange(GradientBuffers buffers) : BucketedGradientExchange(buffers, bucketBytes: 1)
    {
        private bool completing;

        public List<(GradientBucket Bucket, float[] Values, bool DuringPass)> Sent { get; } = [];

        public override string Description => "recording";

        public override void Complete()
        {
            completing = true;
            base.Complete();
            completing = false;
        }

        /// <summary>The whole gradient when the exchange ends (after it, the weight prior's term, the same on every
        /// rank, is added).</summary>
        public float[] AtComplete { get; private set; } = [];

        protected override void Reduce(GradientBucket bucket, ILGPU.ArrayView<float> view)
        {
            Buffers.Kernels.Synchronize();
            Sent.Add((bucket, ((ArrayView1D<float, ILGPU.Stride1D.Dense>)view).GetAsArray1D(), !completing));
        }

        protected override void FinishStep()
        {
            Buffers.Kernels.Synchronize();
            AtComplete = ((ArrayView1D<float, ILGPU.Stride1D.Dense>)Buffers.Gradients).GetAsArray1D();
        }
    }

    /// <summary>NCCL's part played on the host: a bucket's scaled values summed over the ranks in rank order.</summary>
    private sealed class SummingExchange(GradientBuffers buffers) : BucketedGradientExchange(buffers, bucketBytes: 64)
    {
        public override string Description => "summing";

        protected override void Reduce(GradientBucket bucket, ILGPU.ArrayView<float> view)
        {
            Buffers.Kernels.Synchronize();
            var mine = ((ArrayView1D<float, ILGPU.Stride1D.Dense>)view).GetAsArray1D();
            var all = new float[mine.Length * Buffers.Ranks.Size];
            Buffers.Ranks.AllGather(mine, all);
            var sum = new float[mine.Length];
            for (int rank = 0; rank < Buffers.Ranks.Size; rank++)
                for (int i = 0; i < sum.Length; i++)
                    sum[i] += all[rank * mine.Length + i];
            view.CopyFromCPU(sum);
        }

        protected override void FinishStep()
        {
        }
    }

    /// <summary>
    /// Three ranks in threads on batches of 2 (slices 1 + 1 + 0) over 5 examples (the last batch, 1 example, leaves two
    /// ranks without one), the data streamed from the host: a rank with no examples sends nothing that counts, and
    /// the ranks still end equal to each other and within 1e-4 of one process.
    /// </summary>
    [Fact]
    public void RanksWithoutExamplesInAStepStillTakeItsStep()
    {
        var config = new VaeConfig { InputSize = 12, Hidden = [7], Latent = 3 };
        var adam = new AdamSettings();
        var one = Train(config, adam, new UnconnectedRanks(0, 1), batch: 2, count: 5, streamRows: 2);
        var three = InThreads(3, ranks => Train(config, adam, ranks, batch: 2, count: 5, streamRows: 2));
        Assert.Equal(three[0].Parameters, three[1].Parameters);
        Assert.Equal(three[0].Parameters, three[2].Parameters);
        Numerics.AssertClose("3 ranks against 1 process", Numerics.ToDouble(one.Parameters), three[0].Parameters, 1e-4, 0);
        Assert.Equal(one.Sums.Examples, three[0].Sums.Examples);
    }

    private static (float[] Parameters, LossSums Sums) Train(VaeConfig config, AdamSettings adam, Communicator ranks,
        Func<GradientBuffers, GradientExchange>? exchange = null, int batch = 8, int count = 29, int? streamRows = null)
    {
        const ulong seed = 9;
        var images = VaeTests.SyntheticImages(count, 3, 4, 21);
        // Each rank its own context and CPU accelerator, as each MPI process has.
        using var context = Compute.CreateContext();
        using var accelerator = Compute.CreateAccelerator(context, AcceleratorChoice.Cpu);
        using var kernels = new KernelSet(accelerator);
        using var data = new DeviceDataset(accelerator, images, streamRows);
        using var vae = new Vae(kernels, config, batch, seed, adam, ranks);
        if (exchange is not null)
            vae.UseGradientExchange(exchange);
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
        public override void AllToAll(ReadOnlySpan<float> send, Span<float> receive) => Gather(send, receive);

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

            public override void AllToAll(ReadOnlySpan<float> send, Span<float> receive)
            {
                // Everything to everyone, then each rank keeps its own block from each.
                int block = send.Length / Size;
                var all = new float[send.Length * Size];
                group.Exchange(rank, send, all);
                for (int from = 0; from < Size; from++)
                    all.AsSpan(from * send.Length + rank * block, block).CopyTo(receive.Slice(from * block, block));
            }

            public override void Broadcast(Span<byte> bytes, int root)
            {
                var all = new byte[bytes.Length * Size];
                group.Exchange<byte>(rank, bytes, all);
                all.AsSpan(root * bytes.Length, bytes.Length).CopyTo(bytes);
            }
        }
    }
}
