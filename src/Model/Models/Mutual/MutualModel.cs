using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;
using IlgpuVae.Model.Models.OneLayer;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Models.Mutual;

/// <summary>
/// The mutual autoencoder (Phuong et al. 2018, Algorithm 1): the VAE's step on the data, then B pairs drawn from
/// the model (z ~ N(0, I), x ~ p_θ(x|z)) scored by r_w(z|x), layers [AuxiliaryStart, end). θ (the decoder) gets
/// the gradient of C·|Î − M| with Î = H(z) + mean log r_w(z|x), added to the ELBO's; w gets that of −mean log r_w.
/// Both are applied by the same Adam step (the paper alternates the two updates; here w's update uses the same
/// draws, one step earlier than θ's would see it). See <see cref="MutualInformation"/> for the kernels.
/// </summary>
public sealed class MutualModel(ModelParts parts)
    : OneLayerModel(parts, OneLayerFamily.LatentOf(parts), new ReconstructionTerm(parts.Config), new Elbo())
{
    public const string PriorCodes = "mae.z", Observations = "mae.x", ObservationGradient = "mae.dx", LogDensity = "mae.log_r",
        Information = "mae.information", DecoderGradient = "mae.decoder_gradient";

    private bool Bernoulli => Config.Likelihood == LikelihoodKind.Bernoulli;

    private MutualShape Shape(int rows) => new(rows, Config.Latent, (float)Config.MutualInformation, (float)Config.MiWeight);

    /// <summary>The decoder's parameters (and the padding between its layers) in the flat buffer.</summary>
    private (int Offset, int Length) DecoderRange(ParameterLayout layout) =>
        (layout.Layers[layout.DecoderStart].WeightOffset, layout.Layers[layout.DecoderEnd - 1].End - layout.Layers[layout.DecoderStart].WeightOffset);

    public override void Train(Pass pass)
    {
        base.Train(pass);
        InformationPass(pass.Batch, pass.Key, gradient: true);
    }

    /// <summary>Draws <paramref name="rows"/> pairs from the model and scores them by r; with <paramref name="gradient"/>,
    /// adds the information term's gradient to the decoder's and writes r's.</summary>
    private void InformationPass(int rows, DrawKey key, bool gradient)
    {
        var z = Floats(PriorCodes, (long)rows * Config.Latent);
        var x = Floats(Observations, (long)rows * Config.InputSize);
        var logDensity = Floats(LogDensity, rows);
        var information = Floats(Information, 3);
        var gradients = Workspace.Floats(ModelBuffers.Gradients).View;
        var (offset, length) = DecoderRange(Layout);
        var decoderGradient = gradients.SubView(offset, length);
        var saved = Floats(DecoderGradient, length);
        if (gradient)
            // The decoder's backward pass below writes its gradient: keep the ELBO's to add back.
            Kernels.CopyColumns(decoderGradient, saved, new ColumnBlock(1, length, length, 0, length, 0));
        Kernels.PriorSample(z, key.Offset(Philox.Streams.MutualPriorOffset));
        DecoderForward(z, rows);
        Kernels.SampleObservations(Output(rows), x, Bernoulli, (float)Math.Sqrt(Config.GaussianVariance), key.Offset(Philox.Streams.MutualObservationOffset));
        int rTop = Layout.Layers.Count - 1;
        Stack.Forward(Layout.AuxiliaryStart, Layout.Layers.Count, x, rows);
        Kernels.GaussianLogDensityRows(Stack.Output(rTop, rows), z, logDensity, rows, Config.Latent);
        Kernels.MutualInformationStep(logDensity, information, Shape(rows));
        if (!gradient)
            return;
        Kernels.NegativeLogDensityGradient(Stack.Output(rTop, rows), z, Stack.Gradient(rTop, rows), rows, Config.Latent);
        var dX = Floats(ObservationGradient, (long)rows * Config.InputSize);
        Stack.Backward(Layout.AuxiliaryStart, Layout.Layers.Count, rows, x, Bernoulli ? Kernels.None : dX);
        if (Bernoulli)
            Kernels.MutualReinforceGradient(Output(rows), x, logDensity, information, OutputGradient(rows), Shape(rows));
        else
            Kernels.MutualPathwiseGradient(dX, information, OutputGradient(rows));
        DecoderBackward(z, Kernels.None, rows);
        Kernels.Add(decoderGradient, saved);
    }

    /// <summary>Î = H(z) + mean log r(z|x) over <paramref name="rows"/> pairs drawn with <paramref name="key"/> (waits).</summary>
    public override float? InformationEstimate(int rows, DrawKey key)
    {
        InformationPass(rows, key, gradient: false);
        Kernels.Synchronize();
        return ArrayViewExtensions.GetAsArray1D<float>(Floats(Information, 1))[0];
    }
}

/// <summary>The mutual autoencoder's family: the one-layer VAE with r(z|x) after its decoder.</summary>
public sealed class MutualFamily : OneLayerFamily
{
    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        base.Plan(plan, config, layout, batch, rows);
        plan.Floats(MutualModel.PriorCodes, batch * config.Latent);
        plan.Floats(MutualModel.Observations, batch * config.InputSize);
        plan.Floats(MutualModel.ObservationGradient, batch * config.InputSize);
        plan.Floats(MutualModel.LogDensity, batch);
        plan.Floats(MutualModel.Information, 3);
        plan.Floats(MutualModel.DecoderGradient, layout.Layers[layout.DecoderEnd - 1].End - layout.Layers[layout.DecoderStart].WeightOffset);
    }

    /// <summary>r_w(z|x): the encoder's shape, from x to [μ | log σ²] of z.</summary>
    protected override void BuildAuxiliary(LayoutBuilder layout)
    {
        layout.StartAuxiliary();
        layout.Stage("mutual", layout.Config.InputSize, layout.Config.Hidden, 2 * layout.Config.Latent);
    }

    public override FamilyModel Create(ModelParts parts) => new MutualModel(parts);

    public override ReferenceModel Reference { get; } = new MutualModelReference();
}
