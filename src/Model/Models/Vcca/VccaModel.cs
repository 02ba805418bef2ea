using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;
using IlgpuVae.Model.Models.OneLayer;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Models.Vcca;

/// <summary>
/// VCCA (Wang et al. 2016): each image's left and right halves are two views sharing one z. q(z|x₁) reads the left
/// view (or, with <see cref="VaeConfig.EncoderViews"/> 2, q(z|x₁, x₂) the whole image); two decoders, p(x₁|z) = layers [DecoderStart, DecoderEnd) and p(x₂|z) = [DecoderEnd, end), reconstruct
/// both, their outputs joined back into whole images so the data term scores the pair as one image.
/// </summary>
public sealed class VccaModel(ModelParts parts, ILatent latent, IObjective objective)
    : OneLayerModel(parts, latent, new ReconstructionTerm(parts.Config), objective)
{
    public const string View1 = "vcca.view1", View2 = "vcca.view2", JointOutput = "vcca.joint_output",
        JointOutputGradient = "vcca.joint_output_gradient", ZGradientFromView2 = "vcca.dz_from_view2";

    private ViewShape Views => Config.Views;

    public override void PrepareInput(int batch) =>
        Kernels.SplitViews(Input(batch), Floats(View1, (long)batch * Views.View1Size), Floats(View2, (long)batch * Views.View2Size), batch, Views);

    /// <summary>The left view (q(z|x)), or the whole image, both views (q(z|x, y)).</summary>
    public override ArrayView<float> EncoderInput(int batch) =>
        Config.EncoderViews == 1 ? Floats(View1, (long)batch * Views.View1Size) : Input(batch);

    public override ArrayView<float> Output(int rows) => Floats(JointOutput, (long)rows * Config.InputSize);

    public override ArrayView<float> OutputGradient(int rows) => Floats(JointOutputGradient, (long)rows * Config.InputSize);

    protected override void DecoderForward(ArrayView<float> codes, int rows)
    {
        Stack.Forward(Layout.DecoderStart, Layout.DecoderEnd, codes, rows);
        Stack.Forward(Layout.DecoderEnd, Layout.Layers.Count, codes, rows);
        Kernels.JoinViews(Stack.Output(Layout.DecoderEnd - 1, rows), Stack.Output(Layout.Layers.Count - 1, rows), Output(rows), rows, Views);
    }

    /// <summary>Splits the output gradient into its views, runs both decoders back and adds their gradients of z.</summary>
    protected override void DecoderBackward(ArrayView<float> codes, ArrayView<float> dCodes, int rows)
    {
        var dCodesFromView2 = Floats(ZGradientFromView2, (long)rows * Config.Latent);
        Kernels.SplitViews(OutputGradient(rows), Stack.Gradient(Layout.DecoderEnd - 1, rows), Stack.Gradient(Layout.Layers.Count - 1, rows), rows, Views);
        Stack.Backward(Layout.DecoderStart, Layout.DecoderEnd, rows, codes, dCodes);
        Stack.Backward(Layout.DecoderEnd, Layout.Layers.Count, rows, codes, dCodesFromView2);
        Kernels.Add(dCodes, dCodesFromView2);
    }
}

/// <summary>The VCCA family: a one-layer model whose encoder reads one view and whose decoder writes both.</summary>
public sealed class VccaFamily : OneLayerFamily
{
    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        base.Plan(plan, config, layout, batch, rows);
        plan.Floats(VccaModel.View1, batch * config.Views.View1Size);
        plan.Floats(VccaModel.View2, batch * config.Views.View2Size);
        plan.Floats(VccaModel.JointOutput, rows * config.InputSize);
        plan.Floats(VccaModel.JointOutputGradient, rows * config.InputSize);
        plan.Floats(VccaModel.ZGradientFromView2, rows * config.Latent);
    }

    public override ReferenceModel Reference { get; } = new VccaModelReference();

    /// <summary>One decoder per view, both from the same z.</summary>
    protected override void BuildDecoders(LayoutBuilder layout)
    {
        layout.Decoder("decoder", layout.Config.Views.View1Size);
        layout.EndDecoder();
        layout.Decoder("decoder2", layout.Config.Views.View2Size);
    }

    public override FamilyModel Create(ModelParts parts) => new VccaModel(parts, LatentOf(parts), ObjectiveOf(parts));
}
