using System.CommandLine;
using System.Globalization;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Models;

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

    /// <summary>The settings some models alone take, one option each as their catalog entries declare them (an
    /// option several models declare is offered once).</summary>
    internal sealed record CatalogOption(IReadOnlyList<(ModelSpec Spec, ModelOption Option)> Declared, Option<string?> Option);

    internal static List<CatalogOption> CatalogOptions() =>
        ModelCatalog.All
            .SelectMany(spec => spec.Options.Select(option => (Spec: spec, Option: option)))
            .GroupBy(declared => declared.Option.Name)
            .Select(group => new CatalogOption(group.ToList(), new Option<string?>("--" + group.Key)
            {
                Description = $"{string.Join(", ", group.Select(declared => declared.Spec.Name))}: {group.First().Option.Help}",
                HelpName = group.First().Option.ValueName,
            }))
            .ToList();

    /// <summary>The catalog options given on the command line applied to <paramref name="config"/>; one that
    /// <paramref name="model"/> does not declare is a usage error naming the models that do.</summary>
    internal static VaeConfig ApplyCatalogOptions(System.CommandLine.ParseResult parse, IEnumerable<CatalogOption> options, ModelSpec model, VaeConfig config)
    {
        foreach (var (declared, option) in options)
        {
            if (parse.GetValue(option) is not { } text)
                continue;
            var own = declared.FirstOrDefault(entry => entry.Spec.Kind == model.Kind).Option
                      ?? throw new ArgumentException($"{option.Name} applies to --model {string.Join(", ", declared.Select(entry => entry.Spec.Name))}, not {model.Name}");
            config = own.Apply(config, text);
        }
        return config;
    }

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

    /// <summary>A resumed run keeps the model, data and split it was started with (its settings.json): any of
    /// <paramref name="fixedBySettings"/> given beside --resume is refused.</summary>
    internal static void RefuseBesideResume(ParseResult parse, Option<string?> resume, IEnumerable<Option> fixedBySettings)
    {
        if (parse.GetValue(resume) is not { } run)
            return;
        foreach (var option in fixedBySettings)
            if (parse.GetResult(option) is { Implicit: false })
                throw new ArgumentException($"{option.Name} is set by {run}'s settings.json: leave it out with --resume (or start a new run)");
    }

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

    /// <summary>Comma-separated widths; "none" (or nothing) for no hidden layers.</summary>
    internal static int[] ParseWidths(string text, string option = "--hidden")
    {
        if (text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase))
            return [];
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var widths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out widths[i]) || widths[i] < 1)
                throw new ArgumentException($"{option}: '{parts[i]}' is not a positive width; write widths like 400 or 500,200, or none");
        return widths;
    }
}
