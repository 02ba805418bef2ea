using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.Vcca;

namespace IlgpuVae.Model.Models.VccaPrivate;

/// <summary>
/// VCCA-private (Wang et al. 2016): beside the shared z, each view has a private latent, h_x for the left half and
/// h_y for the right, all N(0, I): q(z|x) q(h_x|x) q(h_y|y), p(x|z, h_x) p(y|z, h_y). The first encoder reads the
/// left view and gives the statistics of z and h_x together; a second encoder reads the right view and gives
/// h_y's. The priors are independent, so [z | h_x | h_y] is one diagonal Gaussian of K + 2P columns with the
/// VAE's sampler, KL and log w; the decoders read [z | h_x] and [z | h_y], and z's gradient is the sum of theirs.
/// </summary>
public sealed class VccaPrivateModel(ModelParts parts) : GatheredGaussianModel(parts)
{
    public const string Statistics = "vcca_private.stats", StatisticsGradient = "vcca_private.stats_gradient",
        Decoder1Input = "vcca_private.decoder1_input", Decoder2Input = "vcca_private.decoder2_input",
        Decoder1InputGradient = "vcca_private.decoder1_input_gradient", Decoder2InputGradient = "vcca_private.decoder2_input_gradient";

    protected override string StatisticsBuffer => Statistics;
    protected override string StatisticsGradientBuffer => StatisticsGradient;

    private ViewShape Views => Config.Views;
    private int Shared => Config.Latent;
    private int Private => Config.PrivateLatent;
    /// <summary>Each decoder reads z and its view's h.</summary>
    private int DecoderInputs => Shared + Private;

    public override void PrepareInput(int batch) =>
        Kernels.SplitViews(Input(batch), View(VccaModel.View1, batch, Views.View1Size), View(VccaModel.View2, batch, Views.View2Size), batch, Views);

    public override ArrayView<float> EncoderInput(int batch) => View(VccaModel.View1, batch, Views.View1Size);

    public override ArrayView<float> Output(int rows) => Floats(VccaModel.JointOutput, (long)rows * Config.InputSize);

    public override ArrayView<float> OutputGradient(int rows) => Floats(VccaModel.JointOutputGradient, (long)rows * Config.InputSize);

    /// <summary>The gathered statistics' gradient to each head, then both encoders back to their views.</summary>
    protected override void InferenceBackward(int batch)
    {
        foreach (var (head, block) in HeadBlocks(batch))
            Kernels.CopyColumns(StatsGradient(batch), Stack.Gradient(head, batch), block.Reversed());
        Stack.Backward(0, Layout.EncoderLayerCount, batch, EncoderInput(batch), Kernels.None);
        Stack.Backward(Layout.EncoderLayerCount, Layout.Encoder2End, batch, View(VccaModel.View2, batch, Views.View2Size), Kernels.None);
    }

    /// <summary>Both encoders, their statistics gathered as [μ_z μ_hx μ_hy | log σ² of the same].</summary>
    protected override void InferenceForward(int batch)
    {
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        Stack.Forward(Layout.EncoderLayerCount, Layout.Encoder2End, View(VccaModel.View2, batch, Views.View2Size), batch);
        foreach (var (head, block) in HeadBlocks(batch))
            Kernels.CopyColumns(Stack.Output(head, batch), Stats(batch), block);
    }

    /// <summary>
    /// Where each head's blocks go in the gathered stats: block p (μ, log σ², and u with a rank-one covariance) of the
    /// first encoder's [z h_x] to columns p·W, of the second's [h_y] to p·W + K + P (W = K + 2P).
    /// </summary>
    private IEnumerable<(int Head, ColumnBlock Block)> HeadBlocks(int batch)
    {
        int first = Layout.EncoderLayerCount - 1, second = Layout.Encoder2End - 1;
        for (int part = 0; part < Parts; part++)
        {
            yield return (first, new ColumnBlock(batch, DecoderInputs, Parts * DecoderInputs, part * DecoderInputs, Parts * Width, part * Width));
            yield return (second, new ColumnBlock(batch, Private, Parts * Private, part * Private, Parts * Width, part * Width + DecoderInputs));
        }
    }

    /// <summary>[z | h_x] to the left view's decoder, [z | h_y] to the right's, their outputs joined into images.</summary>
    protected override void DecoderForward(ArrayView<float> codes, int rows)
    {
        var input1 = Floats(Decoder1Input, (long)rows * DecoderInputs);
        var input2 = Floats(Decoder2Input, (long)rows * DecoderInputs);
        Kernels.CopyColumns(codes, input1, new ColumnBlock(rows, DecoderInputs, Width, 0, DecoderInputs, 0));
        Kernels.CopyColumns(codes, input2, new ColumnBlock(rows, Shared, Width, 0, DecoderInputs, 0));
        Kernels.CopyColumns(codes, input2, new ColumnBlock(rows, Private, Width, DecoderInputs, DecoderInputs, Shared));
        Stack.Forward(Layout.DecoderStart, Layout.DecoderEnd, input1, rows);
        Stack.Forward(Layout.DecoderEnd, Layout.Layers.Count, input2, rows);
        Kernels.JoinViews(Stack.Output(Layout.DecoderEnd - 1, rows), Stack.Output(Layout.Layers.Count - 1, rows), Output(rows), rows, Views);
    }

    /// <summary>The output gradient split into its views, each decoder back to its input, and the inputs' gradients
    /// put back in the codes' columns: h_x's and h_y's copied, z's from both added.</summary>
    protected override void DecoderBackward(ArrayView<float> codes, ArrayView<float> dCodes, int rows)
    {
        var dInput1 = Floats(Decoder1InputGradient, (long)rows * DecoderInputs);
        var dInput2 = Floats(Decoder2InputGradient, (long)rows * DecoderInputs);
        Kernels.SplitViews(OutputGradient(rows), Stack.Gradient(Layout.DecoderEnd - 1, rows), Stack.Gradient(Layout.Layers.Count - 1, rows), rows, Views);
        Stack.Backward(Layout.DecoderStart, Layout.DecoderEnd, rows, Floats(Decoder1Input, (long)rows * DecoderInputs), dInput1);
        Stack.Backward(Layout.DecoderEnd, Layout.Layers.Count, rows, Floats(Decoder2Input, (long)rows * DecoderInputs), dInput2);
        Kernels.CopyColumns(dInput1, dCodes, new ColumnBlock(rows, DecoderInputs, DecoderInputs, 0, Width, 0));
        Kernels.AddColumns(dInput2, dCodes, new ColumnBlock(rows, Shared, DecoderInputs, 0, Width, 0));
        Kernels.CopyColumns(dInput2, dCodes, new ColumnBlock(rows, Private, DecoderInputs, Shared, Width, DecoderInputs));
    }

    private ArrayView<float> View(string name, int batch, int width) => Floats(name, (long)batch * width);
}

/// <summary>VCCA-private's family: the left view's encoder of z and h_x, the right view's of h_y, and a decoder per view.</summary>
public sealed class VccaPrivateFamily : ModelFamily
{
    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        int decoderInputs = config.Latent + config.PrivateLatent;
        plan.Floats(ModelBuffers.LogWeights, rows);
        plan.Floats(VccaModel.View1, batch * config.Views.View1Size);
        plan.Floats(VccaModel.View2, batch * config.Views.View2Size);
        plan.Floats(VccaModel.JointOutput, rows * config.InputSize);
        plan.Floats(VccaModel.JointOutputGradient, rows * config.InputSize);
        int parts = config.PosteriorBlocks;
        plan.Floats(VccaPrivateModel.Statistics, batch * parts * config.CodeWidth);
        plan.Floats(VccaPrivateModel.StatisticsGradient, batch * parts * config.CodeWidth);
        foreach (var name in new[] { VccaPrivateModel.Decoder1Input, VccaPrivateModel.Decoder2Input, VccaPrivateModel.Decoder1InputGradient, VccaPrivateModel.Decoder2InputGradient })
            plan.Floats(name, rows * decoderInputs);
    }

    /// <summary>The left view's encoder gives the statistics of z and h_x together.</summary>
    protected override int EncoderOutputs(VaeConfig config) => config.PosteriorBlocks * (config.Latent + config.PrivateLatent);

    /// <summary>q(h_y|y): the same hidden widths from the right view.</summary>
    protected override void BuildMiddle(LayoutBuilder layout)
    {
        var config = layout.Config;
        layout.Stage("encoder2", config.Views.View2Size, config.Hidden, config.PosteriorBlocks * config.PrivateLatent, posterior: true);
        layout.EndSecondEncoder();
    }

    /// <summary>p(x|z, h_x) and p(y|z, h_y), each mirroring the encoder from K + P columns.</summary>
    protected override void BuildDecoders(LayoutBuilder layout)
    {
        var config = layout.Config;
        layout.Decoder("decoder", config.Views.View1Size, inputs: config.Latent + config.PrivateLatent);
        layout.EndDecoder();
        layout.Decoder("decoder2", config.Views.View2Size, inputs: config.Latent + config.PrivateLatent);
    }

    /// <summary>Both encoders see one row per example; the decoders one per sample.</summary>
    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        layer < layout.Encoder2End ? batch : batch * samples;

    public override ReferenceModel Reference { get; } = new VccaPrivateModelReference();

    public override FamilyModel Create(ModelParts parts) => new VccaPrivateModel(parts);
}
