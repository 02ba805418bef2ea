using BenchmarkDotNet.Attributes;
using IlgpuVae.Model.Models.DeepGp;

namespace IlgpuVae.Bench;

/// <summary>
/// Whole deep GP training steps at the size of the paper's Boston runs (455 training rows of 13 standardised features,
/// 100 inducing points a layer, the whole table as the batch, inner layers 13 wide), on random inputs: the single
/// sparse GP is the baseline, so the ratios say what each added layer costs (its 13 outputs each carry a 100 × 100
/// factor of S, which the single GP's one output does not).
/// </summary>
public class DeepGpBenchmarks
{
    private const int Rows = 455, Features = 13, StepsPerInvocation = 5;
    private AcceleratorScope scope = null!;
    private readonly DeepGpModel[] models = new DeepGpModel[3];

    [GlobalSetup]
    public void Setup()
    {
        scope = new AcceleratorScope();
        var random = new Random(1);
        var inputs = Enumerable.Range(0, Rows * Features).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var targets = Enumerable.Range(0, Rows).Select(row => Math.Sin(inputs[row * Features]) + 0.1 * random.NextDouble()).ToArray();
        var data = DeepGpData.Regression(inputs, targets, Rows, Features);
        for (int layers = 1; layers <= 3; layers++)
            models[layers - 1] = new DeepGpModel(scope.Kernels, new DeepGpSettings { Layers = layers }, data);
    }

    private void Steps(DeepGpModel model)
    {
        // Each step reads the factorisations' pivots back, so the steps are waited for one by one as in training.
        for (int step = 0; step < StepsPerInvocation; step++)
            model.TrainStep();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = StepsPerInvocation)]
    public void SparseGpStep() => Steps(models[0]);

    [Benchmark(OperationsPerInvoke = StepsPerInvocation)]
    public void DeepGp2Step() => Steps(models[1]);

    [Benchmark(OperationsPerInvoke = StepsPerInvocation)]
    public void DeepGp3Step() => Steps(models[2]);

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var model in models)
            model.Dispose();
        scope.Dispose();
    }
}
