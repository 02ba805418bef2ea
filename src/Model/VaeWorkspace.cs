using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Model;

public sealed partial class Vae
{
    /// <summary>
    /// Every device buffer a model of <paramref name="config"/> uses for batches of up to
    /// <paramref name="maxBatch"/> examples, and only those: what the constructor allocates and what
    /// <see cref="MemoryPlan"/> adds up. With k samples, buffers after the encoder hold one row per sample.
    /// </summary>
    public static WorkspacePlan Plan(VaeConfig config, int maxBatch, AdamSettings? adam = null)
    {
        var layout = new ParameterLayout(config);
        var family = ModelCatalog.FamilyOf(config);
        var plan = new WorkspacePlan();
        long batch = maxBatch, rows = (long)maxBatch * config.Samples;
        ModelBuffers.PlanShared(plan, layout, config, adam ?? new AdamSettings(), batch, rows);
        family.Plan(plan, config, layout, batch, rows);
        DenseStack.Plan(plan, layout, layer => family.RowsOfLayer(layout, layer, batch, config.Samples));
        return plan;
    }
}
