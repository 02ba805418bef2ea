using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.OneLayer;

namespace IlgpuVae.Model.Objectives;

/// <summary>
/// The IWAE's −L_k = −log (1/k) Σ_i w_i per example, w = p(x, z_i)/q(z_i|x): the gradient weighs each sample's
/// by its normalised weight w̃_i. Scored with its own k.
/// </summary>
public sealed class ImportanceWeighted : IObjective
{
    public int EvaluationSamples(int trainingSamples) => trainingSamples;

    public void Train(OneLayerModel model, Pass pass)
    {
        // The weights need every sample's reconstruction first, so the loss and its gradient are two passes.
        Bound(model, pass);
        model.WeightedReconstructionGradient(pass.Batch, pass.Samples, model.NormalizedWeights(pass.Rows), 1.0 / pass.Batch);
        if (pass.Accumulate)
        {
            model.AccumulateObjective(pass);
            model.AccumulateLoss(pass);
        }
    }

    public void Backward(OneLayerModel model, Pass pass) =>
        model.Latent.WeightedBackward(pass.Batch, pass.Samples, model.NormalizedWeights(pass.Rows), 1f / pass.Batch);

    public void Evaluate(OneLayerModel model, Pass pass)
    {
        Bound(model, pass);
        model.AccumulateObjective(pass);
        model.AccumulateLoss(pass);
    }

    private static void Bound(OneLayerModel model, Pass pass)
    {
        model.ImportanceRows(pass.Batch, pass.Samples);
        model.ImportanceBound(pass.Batch, pass.Samples);
    }

    public static void Plan(WorkspacePlan plan, long batch, long rows)
    {
        plan.Floats(ModelBuffers.NormalizedWeights, rows);
        plan.Floats(ModelBuffers.ObjectivePerExample, batch);
    }
}
