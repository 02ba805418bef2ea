using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Tests;

/// <summary>
/// A data set streamed from the host (minibatches copied into two device slots, the next one prefetched while a step
/// runs) gives the same training, evaluation and importance weights, bit for bit, as the same data held on the
/// device: the gather kernel reads the same bytes in the same order with the same draws.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class StreamingTests(AcceleratorFixture fixture)
{
    private static ImageDataset Images(int count, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[count * 12];
        random.NextBytes(pixels);
        return new ImageDataset("synthetic", pixels, Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray(), count, 3, 4);
    }

    /// <summary>Three epochs of shuffled steps (29 examples in batches of 8: a short last batch), dynamic binarization,
    /// then the evaluation sums and log w of a repeated-example order, both ways. The VAE with k = 2, and the Deep VIB
    /// (whose loss reads the labels through the order).</summary>
    [Theory]
    [InlineData(ModelKind.Vae)]
    [InlineData(ModelKind.Vib)]
    public void StreamedDataTrainsAndEvaluatesAsResidentDataBitForBit(ModelKind kind)
    {
        const int count = 29, batch = 8;
        const ulong seed = 5;
        var config = new VaeConfig { InputSize = 12, Hidden = [7], Latent = 3, Model = kind, Samples = 2, Beta = kind == ModelKind.Vib ? 0.1 : 1 };
        var images = Images(count, 3);
        foreach (var kernels in fixture.KernelSets)
        {
            var results = new List<(float[] Parameters, LossSums Sums, float[] LogWeights)>();
            foreach (int? streamRows in new int?[] { null, batch })
            {
                using var data = new DeviceDataset(kernels.Accelerator, images, streamRows);
                Assert.Equal(streamRows is not null, data.Streamed);
                using var vae = new Vae(kernels, config, batch, seed);
                for (int epoch = 0; epoch < 3; epoch++)
                {
                    data.SetOrder(Shuffle.Permutation(count, seed, epoch));
                    for (int first = 0; first < count; first += batch)
                        vae.TrainStep(data, first, Math.Min(batch, count - first), binarize: true);
                }
                data.SetOrder(Enumerable.Range(0, count).ToArray());
                for (int first = 0; first < count; first += batch)
                    vae.EvaluateBatch(data, first, Math.Min(batch, count - first), first);
                var sums = vae.ReadEvaluationSums(reset: true);
                data.SetOrder(Enumerable.Repeat(4, 6).ToArray());
                var logWeights = kind == ModelKind.Vib ? [] : vae.LogImportanceWeights(data, 0, 4, drawIndex: 2, samples: 4);
                results.Add((vae.GetParameters(), sums, logWeights));
            }
            string what = $"{kernels.Accelerator.AcceleratorType} {kind}";
            Assert.True(results[0].Parameters.SequenceEqual(results[1].Parameters), $"{what}: streamed training moved the weights differently");
            Assert.Equal(results[0].Sums, results[1].Sums);
            Assert.True(results[0].LogWeights.SequenceEqual(results[1].LogWeights), $"{what}: streamed log w differ");
        }
    }

    [Fact]
    public void AMinibatchLargerThanTheSlotsIsRefused()
    {
        var kernels = fixture.KernelSets.First();
        using var data = new DeviceDataset(kernels.Accelerator, Images(10, 1), streamRows: 4);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => data.Stage(kernels, 0, 5));
        Assert.Contains("does not fit the stream's slots of 4", error.Message);
    }
}
