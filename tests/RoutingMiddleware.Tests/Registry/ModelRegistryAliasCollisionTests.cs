using ModelRouting.Registry;
using static ModelRouting.Tests.TestSupport.RegistryTestExtensions;

namespace ModelRouting.Tests.Registry;

/// <summary>
/// Seed weakness: <c>add_alias</c> accepted any name, so an alias could shadow nothing (ids win) or silently
/// steal another endpoint's alias. Collisions are now refused with a clear error.
/// </summary>
public class ModelRegistryAliasCollisionTests
{
    [Fact]
    public void AddAlias_EqualToAnotherEndpointsId_IsRefused()
    {
        var registry = RegistryOf(Endpoint("a"), Endpoint("b"));

        var result = registry.AddAlias("b", "a");

        Assert.False(result.Succeeded);
        Assert.Null(result.Registry);
        Assert.Contains("'b' collides with the endpoint id 'b'", result.Error, StringComparison.Ordinal);
        Assert.Equal("b", registry.Resolve("b")?.Id.Value);
    }

    [Fact]
    public void AddAlias_EqualToItsTargetsId_IsRefused()
    {
        var result = RegistryOf(Endpoint("a")).AddAlias("a", "a");

        Assert.False(result.Succeeded);
        Assert.Contains("collides with the endpoint id 'a'", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void AddAlias_AlreadyAnAliasOfAnotherEndpoint_IsRefused()
    {
        var registry = RegistryOf(Endpoint("a") with { Aliases = ["gpt-4"] }, Endpoint("b"));

        var result = registry.AddAlias("gpt-4", "b");

        Assert.False(result.Succeeded);
        Assert.Contains("'gpt-4' collides with an alias of endpoint 'a'", result.Error, StringComparison.Ordinal);
        Assert.Equal("a", registry.Resolve("gpt-4")?.Id.Value);
    }

    [Fact]
    public void Register_AliasEqualToAnotherEndpointsId_IsRefused()
    {
        var registry = RegistryOf(Endpoint("a"));

        var result = registry.Register(Endpoint("b") with { Aliases = ["a"] });

        Assert.False(result.Succeeded);
        Assert.Contains("Aliases", result.Error, StringComparison.Ordinal);
        Assert.Contains("collides with the endpoint id 'a'", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_AliasEqualToItsOwnId_IsRefused()
    {
        var result = new ModelRegistry(TimeProvider.System).Register(Endpoint("a") with { Aliases = ["a"] });

        Assert.False(result.Succeeded);
        Assert.Contains("collides with the endpoint id 'a'", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_AliasOfAnotherEndpoint_IsRefused()
    {
        var registry = RegistryOf(Endpoint("a") with { Aliases = ["gpt-4"] });

        var result = registry.Register(Endpoint("b") with { Aliases = ["gpt-4"] });

        Assert.False(result.Succeeded);
        Assert.Contains("'gpt-4' collides with an alias of endpoint 'a'", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_IdThatIsAlreadyAnAlias_IsRefused()
    {
        var registry = RegistryOf(Endpoint("a") with { Aliases = ["gpt-4"] });

        var result = registry.Register(Endpoint("gpt-4"));

        Assert.False(result.Succeeded);
        Assert.Contains("Id", result.Error, StringComparison.Ordinal);
        Assert.Contains("'gpt-4' is already an alias of endpoint 'a'", result.Error, StringComparison.Ordinal);
        Assert.Equal("a", registry.Resolve("gpt-4")?.Id.Value);
    }

    [Fact]
    public void Register_ReplacementRepeatingItsOwnAlias_IsAccepted()
    {
        var registry = RegistryOf(Endpoint("a") with { Aliases = ["gpt-4"] });

        var result = registry.Register(Endpoint("a") with { Aliases = ["gpt-4"], Description = "v2" });

        Assert.True(result.Succeeded);
        Assert.Equal("v2", result.Registry.Resolve("gpt-4")?.Description);
    }

    [Fact]
    public void Register_RefusedAlias_LeavesRegistryUnchanged()
    {
        var registry = RegistryOf(Endpoint("a") with { Aliases = ["x"] });

        var result = registry.Register(Endpoint("b") with { Aliases = ["fresh", "x"] });

        Assert.False(result.Succeeded);
        Assert.Null(registry.Resolve("b"));
        Assert.Null(registry.Resolve("fresh"));
        Assert.Equal(["x"], registry.Aliases.Keys);
    }

    [Fact]
    public void Aliases_DifferingOnlyInCase_DoNotCollide()
    {
        var registry = RegistryOf(Endpoint("a") with { Aliases = ["GPT-4"] }, Endpoint("b") with { Aliases = ["gpt-4"] });

        Assert.Equal("a", registry.Resolve("GPT-4")?.Id.Value);
        Assert.Equal("b", registry.Resolve("gpt-4")?.Id.Value);
    }
}
