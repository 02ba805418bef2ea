using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Objectives;

/// <summary>
/// The term of the objective that scores the decoder's output: −log p(x|z) of the image (a VAE), or −log q(y|z)
/// of the label (the Deep VIB). Each row's term goes to the reconstruction-per-row buffer.
/// </summary>
public interface IDataTerm
{
    /// <summary>Each output row's term and its gradient, every row weighing 1/(batch·k).</summary>
    void TrainGradient(FamilyModel model, Pass pass);

    /// <summary>Each output row's term, added to the pass's totals where the term has its own slot.</summary>
    void Evaluate(FamilyModel model, Pass pass);

    /// <summary>Why the model has no likelihood of x to bound, or null.</summary>
    string? NoLikelihoodBound => null;

    /// <summary>Why the decoder's output is not an image, or null.</summary>
    string? NoImages => null;
}

/// <summary>−log p(x|z) with the config's likelihood (Bernoulli logits, or a Gaussian of fixed variance).</summary>
public sealed class ReconstructionTerm(VaeConfig config) : IDataTerm
{
    public void TrainGradient(FamilyModel model, Pass pass)
    {
        int rows = pass.Rows;
        var reconstruction = ReconstructionParameters.For(config.Likelihood, config.InputSize, config.GaussianVariance, 1.0 / rows);
        model.Kernels.ReconstructionLossGradient(config.Likelihood, model.Input(pass.Batch), model.Output(rows), model.OutputGradient(rows),
            model.ReconstructionPerRow(rows), rows, config.InputSize, reconstruction, pass.Samples);
    }

    public void Evaluate(FamilyModel model, Pass pass) => model.ReconstructionLossRows(pass.Batch, pass.Samples);
}

/// <summary>The Deep VIB's −log q(y|z), a softmax over the decoder's outputs, with whether each row's most likely
/// class was its label (counted in the totals' correct slot).</summary>
public sealed class ClassificationTerm(VaeConfig config) : IDataTerm
{
    public const string CorrectPerRow = "vib.correct_per_row";

    public string NoLikelihoodBound => "the Deep VIB models labels, not images: it has no likelihood of x to bound";

    public string NoImages => "the Deep VIB decodes class probabilities, not images";

    public void TrainGradient(FamilyModel model, Pass pass) => LossGradient(model, pass, 1f / pass.Rows, pass.Accumulate);

    // The gradient buffer of the last layer serves as scratch: evaluation computes no gradient.
    public void Evaluate(FamilyModel model, Pass pass) => LossGradient(model, pass, 1f, accumulate: true);

    private void LossGradient(FamilyModel model, Pass pass, float scale, bool accumulate)
    {
        int rows = pass.Rows;
        var correct = model.Floats(CorrectPerRow, rows);
        model.Kernels.ClassificationLossGradient(model.Output(rows), pass.Data.Labels, pass.Data.Order, model.OutputGradient(rows),
            model.ReconstructionPerRow(rows), correct, rows, new ClassificationShape(config.Classes, pass.Samples, pass.First), scale);
        if (accumulate)
            model.Kernels.AccumulateCount(correct, pass.Totals, rows, ModelBuffers.CorrectSlot);
    }

    public static void Plan(WorkspacePlan plan, long rows) => plan.Floats(CorrectPerRow, rows);
}
