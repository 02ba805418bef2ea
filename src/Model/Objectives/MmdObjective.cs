using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.OneLayer;

namespace IlgpuVae.Model.Objectives;

/// <summary>
/// The InfoVAE / MMD-VAE: rec + β·KL + λ·MMD²(q(z), p(z)) on the batch, MMD² against as many draws from the
/// prior as the batch has examples, from the stream beside the sampler's (see <see cref="Mmd"/>).
/// </summary>
public sealed class MmdObjective(VaeConfig config) : IObjective
{
    public const string PriorDraws = "mmd.prior_draws", MmdPerRow = "mmd.per_row";

    public void Train(OneLayerModel model, Pass pass)
    {
        model.DataTerm.TrainGradient(model, pass);
        Objective(model, pass);
        if (pass.Accumulate)
        {
            model.AccumulateObjective(pass);
            model.AccumulateLoss(pass);
        }
    }

    public void Backward(OneLayerModel model, Pass pass)
    {
        model.Kernels.MmdBackward(model.Z(pass.Batch), Prior(model, pass.Batch), model.ZGradient(pass.Batch),
            Settings(pass.Batch, pass.KlWeight), (float)config.MmdLambda);
        model.Latent.Backward(pass.Batch, pass.Samples, (float)(pass.KlWeight / pass.Batch));
    }

    public void Evaluate(OneLayerModel model, Pass pass)
    {
        model.DataTerm.Evaluate(model, pass);
        Objective(model, pass);
        model.AccumulateObjective(pass);
        model.AccumulateLoss(pass);
    }

    /// <summary>Draws the batch's prior samples, then each row's share of MMD² and its objective
    /// rec + β·KL + λ·B·share (into the per-example objective).</summary>
    private void Objective(OneLayerModel model, Pass pass)
    {
        int batch = pass.Batch;
        model.Kernels.PriorSample(Prior(model, batch), pass.Key.Offset(Philox.Streams.MmdPriorOffset));
        model.Kernels.MmdForward(model.Z(batch), Prior(model, batch), model.ReconstructionPerRow(batch), model.KlPerRow(batch),
            model.Floats(MmdPerRow, batch), model.ObjectivePerExample(batch), Settings(batch, pass.KlWeight));
    }

    private MmdParameters Settings(int batch, double beta) =>
        new(config.Latent, batch, config.MmdKernel, (float)config.MmdLambda, (float)beta);

    private ArrayView<float> Prior(OneLayerModel model, int batch) => model.Floats(PriorDraws, (long)batch * config.Latent);

    public static void Plan(WorkspacePlan plan, VaeConfig config, long batch)
    {
        plan.Floats(ModelBuffers.ObjectivePerExample, batch);
        plan.Floats(PriorDraws, batch * config.Latent);
        plan.Floats(MmdPerRow, batch);
    }
}
