using CsCheck;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Tests;

/// <summary>
/// Property tests: every reader, given random mutations of a valid file (bytes overwritten, the file cut
/// short), either reads it or reports a <see cref="DataFormatException"/> naming the file; never another
/// exception, never a hang. CsCheck draws the mutations from a seeded generator and shrinks any failure.
/// </summary>
public sealed class MutationTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("ilgpuvae-mutation-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    /// <summary>Up to 6 overwritten bytes at any position, then optionally a cut anywhere.</summary>
    private static Gen<byte[]> Mutations(byte[] valid) =>
        Gen.Select(Gen.Int[0, valid.Length - 1].Array[0, 6], Gen.Byte.Array[6], Gen.Int[0, valid.Length], Gen.Bool)
            .Select((positions, values, cut, truncate) =>
            {
                var bytes = (byte[])valid.Clone();
                for (int i = 0; i < positions.Length; i++)
                    bytes[positions[i]] = values[i];
                return truncate ? bytes[..cut] : bytes;
            });

    private static void ReadsOrReportsTheFile(string path, Action read)
    {
        try
        {
            read();
        }
        catch (DataFormatException error)
        {
            Assert.StartsWith(path, error.Message);
            Assert.DoesNotContain('\n', error.Message);
        }
    }

    [Fact]
    public void IdxReaderNeverFailsUnexpectedly()
    {
        var valid = IdxReaderTests.Idx([3, 4, 5], Enumerable.Range(0, 60).Select(i => (byte)i).ToArray());
        Mutations(valid).Sample(bytes =>
        {
            ReadsOrReportsTheFile("mutated.idx", () =>
            {
                var array = IdxReader.Parse("mutated.idx", bytes);
                Assert.Equal(array.Dimensions.Aggregate(1L, (product, size) => product * size), array.Data.Length);
            });
        }, iter: 2000, seed: "0N0XIzNsQ0O2");
    }

    [Fact]
    public void SafeTensorsReaderNeverFailsUnexpectedly()
    {
        var original = Path.Combine(directory, "valid.safetensors");
        SafeTensors.Write(original, [new Tensor("w", [2, 3], [1, 2, 3, 4, 5, 6]), new Tensor("b", [2], [7, 8])],
            new Dictionary<string, string> { ["k"] = "v" });
        var valid = File.ReadAllBytes(original);
        var path = Path.Combine(directory, "mutated.safetensors");
        Mutations(valid).Sample(bytes =>
        {
            File.WriteAllBytes(path, bytes);
            ReadsOrReportsTheFile(path, () =>
            {
                foreach (var tensor in SafeTensors.Read(path).Tensors.Values)
                    Assert.Equal(tensor.ElementCount, tensor.Data.Length);
            });
        }, iter: 1000, seed: "0N0XIzNsQ0O3", threads: 1);
    }

    [Fact]
    public void CsvReaderNeverFailsUnexpectedly()
    {
        var valid = System.Text.Encoding.UTF8.GetBytes("label,p1,p2,p3,p4\n3,0,255,17,4\n7,1,2,3,\"4\"\n");
        var path = Path.Combine(directory, "mutated.csv");
        Mutations(valid).Sample(bytes =>
        {
            File.WriteAllBytes(path, bytes);
            ReadsOrReportsTheFile(path, () =>
            {
                var data = CsvImageReader.Read("t", path);
                Assert.Equal(data.Count * data.Features, data.Images.Length);
                Assert.Equal(data.Count, data.Labels.Length);
            });
        }, iter: 2000, seed: "0N0XIzNsQ0O6", threads: 1);
    }

    [Fact]
    public void RunConfigurationNeverFailsUnexpectedly()
    {
        var run = Path.Combine(directory, "run");
        Directory.CreateDirectory(run);
        var path = Path.Combine(run, Host.TrainOptions.RunConfigFile);
        var valid = System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(
            new { model = new Model.VaeConfig(), training = new Host.TrainOptions { Out = run } }, Checkpoint.JsonOptions));
        Mutations(valid).Sample(bytes =>
        {
            File.WriteAllBytes(path, bytes);
            ReadsOrReportsTheFile(path, () => Assert.Equal(run, Host.TrainOptions.ForResume(run).Out));
        }, iter: 1000, seed: "0N0XIzNsQ0O5", threads: 1);
    }

    [Fact]
    public void CheckpointStateNeverFailsUnexpectedly()
    {
        var original = Path.Combine(directory, "original");
        var config = new Model.VaeConfig { InputSize = 4, Hidden = [4], Latent = 2 };
        var layout = new Model.ParameterLayout(config);
        // A checkpoint written by the model code itself, through a CPU accelerator.
        using (var context = GpuKernels.Compute.CreateContext())
        using (var accelerator = GpuKernels.Compute.CreateAccelerator(context, GpuKernels.AcceleratorChoice.Cpu))
        using (var kernels = new GpuKernels.KernelSet(accelerator))
        using (var vae = new Model.Vae(kernels, config, 2, 1))
            Checkpoint.Save(original, vae, 1);
        var valid = File.ReadAllBytes(Path.Combine(original, Checkpoint.StateFile));
        var mutated = Path.Combine(directory, "mutated");
        Directory.CreateDirectory(mutated);
        foreach (var name in new[] { Checkpoint.ModelFile, Checkpoint.OptimizerFile })
            File.Copy(Path.Combine(original, name), Path.Combine(mutated, name));
        var statePath = Path.Combine(mutated, Checkpoint.StateFile);
        Mutations(valid).Sample(bytes =>
        {
            File.WriteAllBytes(statePath, bytes);
            try
            {
                var loaded = Checkpoint.Load(mutated);
                Assert.Equal(layout.Count, loaded.Parameters.Length);
            }
            catch (DataFormatException error)
            {
                Assert.Contains(mutated, error.Message);
                Assert.DoesNotContain('\n', error.Message);
            }
        }, iter: 1000, seed: "0N0XIzNsQ0O4", threads: 1);
        Assert.True(layout.Count > 0);
    }
}
