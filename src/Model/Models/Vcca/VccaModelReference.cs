using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.OneLayer;

namespace IlgpuVae.Model.Models.Vcca;

/// <summary>VCCA in double: the one-layer objective with the encoder on the left view and a decoder per view.</summary>
public sealed class VccaModelReference : OneLayerModelReference
{
    /// <summary>q(z|x₁) reads the left view; q(z|x₁, x₂) the whole image.</summary>
    protected override double[] EncoderInput(VaeConfig config, double[] x, int batch) =>
        config.EncoderViews == 2 ? x : ViewReference.Split(x, batch, config.Views).View1;

    protected override double[] DecoderForward(ReferenceLayers layers, VaeConfig config, double[] z, int rows) =>
        ViewReference.Join(base.DecoderForward(layers, config, z, rows),
            layers.Run(layers.Layout.DecoderEnd, layers.Layout.Layers.Count, z, rows), rows, config.Views);

    /// <summary>Each view's decoder back to z, where their gradients add.</summary>
    protected override double[] DecoderBackward(ReferenceLayers layers, VaeConfig config, double[] dOutput, int rows, double[] gradient)
    {
        var (dLeft, dRight) = ViewReference.Split(dOutput, rows, config.Views);
        var dZFromRight = layers.Backward(layers.Layout.DecoderEnd, layers.Layout.Layers.Count, dRight, rows, gradient);
        return base.DecoderBackward(layers, config, dLeft, rows, gradient).Select((value, index) => value + dZFromRight[index]).ToArray();
    }
}
