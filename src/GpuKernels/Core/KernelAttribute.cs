using System.Reflection;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Marks a kernel entry point, so that the PTX compilation test and `check` find it without a central list. A
/// generic kernel names the type arguments it is launched with, one instantiation per type (every generic kernel
/// here has one type parameter): <c>[Kernel(typeof(BernoulliLogits), typeof(GaussianFixedVariance))]</c>.
/// <see cref="KernelSet"/> refuses to load a kernel, or an instantiation, that is not listed here.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class KernelAttribute(params Type[] typeArguments) : Attribute
{
    public IReadOnlyList<Type> TypeArguments { get; } = typeArguments;

    private static readonly Lazy<IReadOnlyList<MethodInfo>> all = new(FindAll);
    private static readonly Lazy<HashSet<MethodInfo>> listed = new(() => [.. all.Value]);

    /// <summary>Every listed kernel of this assembly, generic ones once per listed type argument, in a stable
    /// order (by type, then method name, then type argument).</summary>
    public static IReadOnlyList<MethodInfo> All => all.Value;

    public static bool IsListed(MethodInfo method) => listed.Value.Contains(method);

    private static List<MethodInfo> FindAll()
    {
        var methods = new List<MethodInfo>();
        var types = typeof(KernelAttribute).Assembly.GetTypes().OrderBy(type => type.FullName, StringComparer.Ordinal);
        foreach (var type in types)
        {
            var entries = type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Where(method => method.GetCustomAttribute<KernelAttribute>() is not null)
                .OrderBy(method => method.Name, StringComparer.Ordinal);
            foreach (var method in entries)
            {
                var arguments = method.GetCustomAttribute<KernelAttribute>()!.TypeArguments;
                if (method.IsGenericMethodDefinition != arguments.Count > 0)
                    throw new InvalidOperationException(
                        $"{type.Name}.{method.Name}: a generic kernel lists its type arguments in [Kernel(...)], and only a generic one does");
                if (arguments.Count == 0)
                    methods.Add(method);
                else
                    methods.AddRange(arguments.Select(argument => method.MakeGenericMethod(argument)));
            }
        }
        return methods;
    }
}
