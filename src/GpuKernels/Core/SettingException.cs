using System.Text.RegularExpressions;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// A setting that cannot be used, with the settings it names marked <c>@Name</c> (a configuration property:
/// <c>@Latent must be at least 1 (got 0)</c>). The library reads the message with the property names
/// (<c>Latent must be ...</c>); a front end renders it with its own names for them (the command line's
/// <c>--latent must be ...</c>), so the layers below it never name a flag.
/// </summary>
public sealed partial class SettingException(string template) : ArgumentException(Render(template, name => name)), ISettingMessage
{
    /// <summary>The message with its settings marked.</summary>
    public string Template { get; } = template;

    /// <summary>The message with each setting named by <paramref name="name"/>.</summary>
    public string Render(Func<string, string> name) => Render(Template, name);

    /// <summary><paramref name="template"/> with each <c>@Name</c> replaced by <paramref name="name"/>(Name).</summary>
    public static string Render(string template, Func<string, string> name) =>
        Marker().Replace(template, match => name(match.Groups[1].Value));

    [GeneratedRegex(@"@([A-Z]\w*)")]
    private static partial Regex Marker();
}

/// <summary>An error whose message names settings as <c>@Name</c>, for a front end to render with its own names.</summary>
public interface ISettingMessage
{
    string Render(Func<string, string> name);
}
