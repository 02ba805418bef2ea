using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.OneLayer;

namespace IlgpuVae.Model.Objectives;

/// <summary>
/// What a one-layer model minimises, per example: the loss of each row and its totals, the gradient of the
/// decoder's output, and how the codes' gradient (with the KL term's) reaches the encoder. ELBO, importance-weighted
/// bound, target rate and MMD are objectives; the VAE, IWAE, autoencoder, InfoVAE and Deep VIB are combinations
/// of an objective, a latent and a data term on one model.
/// </summary>
public interface IObjective
{
    /// <summary>Samples per example when scoring: 1, unless the objective is a k-sample bound.</summary>
    int EvaluationSamples(int trainingSamples) => 1;

    /// <summary>After the forward pass: each row's terms, the gradient of the decoder's output and, when the pass
    /// accumulates, the totals.</summary>
    void Train(OneLayerModel model, Pass pass);

    /// <summary>After the decoder's backward pass: from the codes' gradient to the encoder output's.</summary>
    void Backward(OneLayerModel model, Pass pass);

    /// <summary>After the forward pass: the terms, added to the pass's totals, with no gradient.</summary>
    void Evaluate(OneLayerModel model, Pass pass);
}
