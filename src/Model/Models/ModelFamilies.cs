using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.Ladder;
using IlgpuVae.Model.Models.OneLayer;
using IlgpuVae.Model.Models.TwoLayer;
using IlgpuVae.Model.Models.Vcca;

namespace IlgpuVae.Model.Models;

/// <summary>Which family builds a model of a given config.</summary>
public static class ModelFamilies
{
    private static readonly OneLayerFamily OneLayer = new();
    private static readonly TwoLayerFamily TwoLayer = new();
    private static readonly LadderFamily Ladder = new();
    private static readonly VccaFamily Vcca = new();

    public static ModelFamily For(VaeConfig config) => config switch
    {
        { Model: ModelKind.Ladder } => Ladder,
        { Model: ModelKind.Vcca } => Vcca,
        { StochasticLayers: 2 } => TwoLayer,
        _ => OneLayer,
    };
}
