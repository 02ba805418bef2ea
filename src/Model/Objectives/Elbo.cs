using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.OneLayer;

namespace IlgpuVae.Model.Objectives;

/// <summary>The negative ELBO, rec + β·KL averaged over the k samples of each example and over the batch (β = 0
/// with the autoencoder's code, whose KL rows are zero).</summary>
public sealed class Elbo : IObjective
{
    public void Train(OneLayerModel model, Pass pass)
    {
        model.DataTerm.TrainGradient(model, pass);
        if (pass.Accumulate)
            model.AccumulateLoss(pass);
    }

    public void Backward(OneLayerModel model, Pass pass) =>
        model.Latent.Backward(pass.Batch, pass.Samples, (float)(pass.KlWeight / pass.Batch));

    public void Evaluate(OneLayerModel model, Pass pass)
    {
        model.DataTerm.Evaluate(model, pass);
        model.AccumulateLoss(pass);
    }
}
