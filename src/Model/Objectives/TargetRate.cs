using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.OneLayer;

namespace IlgpuVae.Model.Objectives;

/// <summary>
/// Target-rate training (Alemi et al. 2018): rec + |KL − σ| per example, so the KL weight is sign(KL − σ) of the
/// batch, which the device writes and the sampler's backward pass reads (see <see cref="GpuKernels.TargetRate"/>).
/// </summary>
public sealed class TargetRateObjective : IObjective
{
    public const string RateSign = "target_rate.sign";
    private readonly double rate;
    private readonly ArrayView<float> rateSign;

    public TargetRateObjective(double rate, Workspace workspace)
    {
        this.rate = rate;
        rateSign = workspace.Floats(RateSign).View;
        // Written by the device before its first read; starts at 1 as a KL weight factor would.
        rateSign.CopyFromCPU(new[] { 1f });
    }

    public void Train(OneLayerModel model, Pass pass)
    {
        model.DataTerm.TrainGradient(model, pass);
        model.Kernels.TargetRateObjective(model.KlPerRow(pass.Batch), model.ReconstructionPerRow(pass.Rows),
            model.ObjectivePerExample(pass.Batch), rateSign, pass.Batch, (float)rate);
        if (pass.Accumulate)
        {
            model.AccumulateObjective(pass);
            model.AccumulateLoss(pass);
        }
    }

    public void Backward(OneLayerModel model, Pass pass) =>
        model.Latent.Backward(pass.Batch, pass.Samples, (float)(1.0 / pass.Batch), rateSign);

    public void Evaluate(OneLayerModel model, Pass pass)
    {
        model.DataTerm.Evaluate(model, pass);
        model.Kernels.TargetRateObjective(model.KlPerRow(pass.Batch), model.ReconstructionPerRow(pass.Batch),
            model.ObjectivePerExample(pass.Batch), rateSign, pass.Batch, (float)rate);
        model.AccumulateObjective(pass);
        model.AccumulateLoss(pass);
    }

    public static void Plan(WorkspacePlan plan, long batch)
    {
        plan.Floats(ModelBuffers.ObjectivePerExample, batch);
        plan.Floats(RateSign, 1);
    }
}
