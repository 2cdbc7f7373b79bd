using ModelRouting.Registry;

namespace ModelRouting.Tests.TestSupport;

/// <summary>Shorthands for building registries in tests.</summary>
internal static class RegistryTestExtensions
{
    /// <summary>The cluster every test endpoint uses unless a test says otherwise.</summary>
    public const string Cluster = "pool";

    /// <summary>An endpoint with the seed's defaults; the base model is the id's base name unless given.</summary>
    public static ModelEndpoint Endpoint(string id, string? baseModel = null) =>
        new(id, baseModel ?? new ModelId(id).BaseName, Cluster);

    /// <summary>Registers an endpoint and fails the test if the registry refuses it.</summary>
    public static ModelRegistry MustRegister(this ModelRegistry registry, ModelEndpoint endpoint)
    {
        var result = registry.Register(endpoint);
        Assert.True(result.Succeeded, result.Error);
        return result.Registry;
    }

    /// <summary>Applies a change that must succeed.</summary>
    public static ModelRegistry Must(this RegistryResult result)
    {
        Assert.True(result.Succeeded, result.Error);
        return result.Registry;
    }

    /// <summary>Builds a registry from endpoints, in order, on a manual clock.</summary>
    public static ModelRegistry RegistryOf(params ModelEndpoint[] endpoints) => RegistryOf(new ManualTimeProvider(), endpoints);

    /// <summary>Builds a registry from endpoints, in order, on the given clock.</summary>
    public static ModelRegistry RegistryOf(TimeProvider time, params ModelEndpoint[] endpoints)
    {
        var registry = new ModelRegistry(time);
        foreach (var endpoint in endpoints)
        {
            registry = registry.MustRegister(endpoint);
        }

        return registry;
    }
}
