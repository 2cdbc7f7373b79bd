using ModelRouting.Configuration;
using ModelRouting.Registry;
using ModelRouting.Tests.TestSupport;

namespace ModelRouting.Tests.Configuration;

/// <summary>Shared configuration fixtures for the factory tests.</summary>
internal static class ConfigTestData
{
    public static readonly IReadOnlySet<string> Clusters = new HashSet<string>(StringComparer.Ordinal) { "qwen-pool", "llama-pool" };

    /// <summary>A valid endpoint entry on the qwen pool.</summary>
    public static ModelEndpointOptions Entry(string? id, params string[] aliases) => new()
    {
        Id = id,
        BaseModel = "qwen3-8b",
        Cluster = "qwen-pool",
        Aliases = aliases.Length == 0 ? null : [.. aliases],
    };

    public static ModelRoutingOptions Options(params ModelEndpointOptions[] entries) => new() { Endpoints = [.. entries] };

    public static (ModelRegistry? Registry, IReadOnlyList<string> Errors) Build(params ModelEndpointOptions[] entries) =>
        ModelRegistryFactory.Build(Options(entries), Clusters, previous: null, new ManualTimeProvider());

    /// <summary>Builds, expects success, and returns the registry.</summary>
    public static ModelRegistry MustBuild(ModelRoutingOptions options, TimeProvider time, ModelRegistry? previous = null)
    {
        var (registry, errors) = ModelRegistryFactory.Build(options, Clusters, previous, time);
        Assert.Empty(errors);
        Assert.NotNull(registry);
        return registry;
    }
}
