namespace IlgpuVae.Model;

/// <summary>The models of the catalog, as configs and checkpoints name them (see shared SCIENCE.md): a new model
/// is a member here and an entry in <see cref="Models.ModelCatalog.All"/>. Kept in the IlgpuVae.Model namespace,
/// where configs have always found it.</summary>
public enum ModelKind
{
    Vae,
    Iwae,
    Ae,
    /// <summary>InfoVAE / MMD-VAE: rec + β·KL + λ·MMD²(q(z), p(z)) on the batch (β defaults to 0 for it).</summary>
    InfoVae,
    /// <summary>Deep VIB (supervised): −log q(y|z) + β·KL with q(y|z) a softmax regression on z (β defaults to 1e-3).</summary>
    Vib,
    /// <summary>VCCA (Wang et al. 2016): two views of each image (its left and right halves) share one z; q(z|x₁)
    /// reads the left view alone and separate decoders p(x₁|z), p(x₂|z) reconstruct both, so the right half is
    /// predicted from the left. The objective is the ELBO of the pair, rec₁ + rec₂ + β·KL.</summary>
    Vcca,
    /// <summary>Ladder VAE (Sønderby et al. 2016): two stochastic layers whose q(z1|x, z2) merges a deterministic
    /// bottom-up pass with the top-down prior p(z1|z2) by precision weighting; ELBO averaged over k samples,
    /// every KL term sampled through log w.</summary>
    Ladder,
    /// <summary>Variational Ladder Autoencoder (Zhao, Song and Ermon 2017): <see cref="VaeConfig.LatentLayers"/>
    /// small latent layers, each inferred from a deeper hidden layer and joining the decoder at a matching depth,
    /// with independent N(0, I) priors; the ELBO with the sum of their KL terms.</summary>
    Vlae,
    /// <summary>Auto-encoding CorEx (Gao et al. 2019): the VAE's bound with a learned factorized marginal r(z) in
    /// place of N(0, I); AnchorVAE when some dimensions are anchors (<see cref="VaeConfig.Anchors"/>).</summary>
    Corex,
    /// <summary>Mutual autoencoder (Phuong et al. 2018): the ELBO − C·|Î(x; z) − M|, where Î = H(z) + E log r(z|x)
    /// is scored on pairs drawn from the model by a learned Gaussian r(z|x).</summary>
    Mutual,
    /// <summary>Hierarchical variational model (Ranganath, Tran and Blei 2016): a planar-flow variational prior over
    /// the mean-field parameters λ, z ~ N(λ, τ²), and an auxiliary r(λ|z) in the hierarchical ELBO.</summary>
    Hvm,
    /// <summary>Sigmoid belief network (Neal 1992) trained by NVIL (Mnih and Gregor 2014): binary latents h with
    /// q(h|x) = Π Bernoulli(σ(a(x))), a learned factorised prior p(h), the ELBO's encoder gradient by the
    /// score-function estimator with an input-dependent baseline, a running mean and variance normalisation.</summary>
    Sbn,
    /// <summary>Deep AutoRegressive Network (Gregor et al. 2014): binary latents whose prior and encoder are
    /// autoregressive over the units (strictly lower-triangular weights), trained by the same NVIL score-function
    /// estimator as the sigmoid belief network.</summary>
    Darn,
    /// <summary>Sparse gamma deep exponential family (Ranganath et al. 2015): layers of gamma units whose means are
    /// positive-weighted sums of the layer above, binary pixels through the Bernoulli–Poisson link, a mean-field gamma
    /// q(z|x) trained by black-box VI (score-function gradients with Rao-Blackwellization and a leave-one-out baseline).</summary>
    Def,
    /// <summary>Hierarchical variational model with Bernoulli mean-field latents (Ranganath, Tran and Blei 2016): z_k ~
    /// Bernoulli(σ(λ_k)) under the HVM's planar-flow q(λ|x) and auxiliary r(λ|z), a sigmoid belief network's p(x, z);
    /// λ's gradient pathwise at the drawn z plus NVIL-centred score-function through z's draw.</summary>
    HvmBernoulli,
}
