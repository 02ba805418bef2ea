using System.CommandLine;
using System.Globalization;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Host.Commands;

/// <summary>Options and parsers that several commands share.</summary>
internal static class CommandOptions
{
    /// <summary>Parses an option whose values are an enum's members, written as a user types them (lower case: vae,
    /// infovae, relu); anything else is a usage error that lists those names, not the C# type and its members.</summary>
    internal static Func<System.CommandLine.Parsing.ArgumentResult, TEnum> Named<TEnum>(string option) where TEnum : struct, Enum =>
        result =>
        {
            string text = result.Tokens.Count == 0 ? "" : result.Tokens[0].Value;
            var names = Enum.GetNames<TEnum>().Select(name => name.ToLowerInvariant()).ToArray();
            int index = Array.IndexOf(names, text.ToLowerInvariant());
            if (index >= 0)
                return Enum.GetValues<TEnum>()[index];
            result.AddError($"unknown {option} '{text}': use {string.Join(", ", names)}");
            return default;
        };

    internal static Option<string> DenseOption()
    {
        var dense = new Option<string>("--dense") { Description = "Dense kernels for the training steps: auto (the accelerator's default), simple, cpu (the CPU-shaped kernels) or tiled (shared memory, GPUs)", DefaultValueFactory = _ => "auto" };
        dense.AcceptOnlyFromAmong("auto", "simple", "cpu", "tiled");
        return dense;
    }

    /// <summary>A --dense choice; null is auto, the accelerator's default.</summary>
    internal static DenseVariant? ParseDense(string? text) => text switch
    {
        "simple" => DenseVariant.Simple,
        "cpu" => DenseVariant.CpuShaped,
        "tiled" => DenseVariant.GpuTiled,
        _ => null,
    };

    internal static Option<string> AcceleratorOption()
    {
        var option = new Option<string>("--accelerator")
        {
            Description = "auto (CUDA, then OpenCL, then CPU), cuda, opencl or cpu",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(Compute.AcceleratorVariable) ?? "auto",
        };
        option.AcceptOnlyFromAmong("auto", "cuda", "opencl", "cpu");
        return option;
    }

    internal static int[] ParseWidths(string text, string option = "--hidden")
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var widths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out widths[i]) || widths[i] < 1)
                throw new ArgumentException($"{option}: '{parts[i]}' is not a positive width; write widths like 400 or 500,200");
        return widths;
    }
}
