using ModelRouting.Registry;
using ModelRouting.Tests.TestSupport;
using static ModelRouting.Tests.TestSupport.RegistryTestExtensions;

namespace ModelRouting.Tests.Registry;

public class ModelRegistryTests
{
    private readonly ManualTimeProvider _time = new();

    [Fact]
    public void New_IsEmpty()
    {
        var registry = new ModelRegistry(_time);

        Assert.Equal(0, registry.Count);
        Assert.True(registry.IsEmpty);
        Assert.Null(registry.DefaultId);
        Assert.Null(registry.DefaultEndpoint);
        Assert.Empty(registry.AllEndpoints);
        Assert.Empty(registry.AvailableEndpoints);
        Assert.Empty(registry.Aliases);
        Assert.Null(registry.Resolve("bonsai-8b"));
    }

    [Fact]
    public void Empty_IsEmpty()
    {
        Assert.True(ModelRegistry.Empty.IsEmpty);
        Assert.Null(ModelRegistry.Empty.DefaultEndpoint);
    }

    [Fact]
    public void Register_NewEndpoint_IsResolvableAndCounted()
    {
        var registry = new ModelRegistry(_time).MustRegister(Endpoint("bonsai-8b", "qwen3-8b"));

        Assert.Equal(1, registry.Count);
        Assert.False(registry.IsEmpty);
        var endpoint = Assert.IsType<ModelEndpoint>(registry.Resolve("bonsai-8b"));
        Assert.Equal("qwen3-8b", endpoint.BaseModel);
        Assert.True(registry.TryGet("bonsai-8b", out var got));
        Assert.Same(endpoint, got);
    }

    [Fact]
    public void Register_StampsRegistrationTimeFromTheClock()
    {
        var registry = new ModelRegistry(_time).MustRegister(Endpoint("a"));
        _time.Advance(TimeSpan.FromMinutes(5));
        registry = registry.MustRegister(Endpoint("b"));

        Assert.Equal(ManualTimeProvider.DefaultStart, registry.Resolve("a")!.RegisteredAt);
        Assert.Equal(ManualTimeProvider.DefaultStart.AddMinutes(5), registry.Resolve("b")!.RegisteredAt);
    }

    [Fact]
    public void Register_WithExplicitRegistrationTime_KeepsIt()
    {
        var registeredAt = new DateTimeOffset(2020, 6, 1, 12, 0, 0, TimeSpan.Zero);

        var registry = new ModelRegistry(_time).MustRegister(Endpoint("a") with { RegisteredAt = registeredAt });

        Assert.Equal(registeredAt, registry.Resolve("a")!.RegisteredAt);
    }

    [Fact]
    public void Register_SameId_ReplacesTheEndpoint()
    {
        var registry = RegistryOf(_time, Endpoint("bonsai-8b") with { MaxContextLength = 4096, Description = "old" });

        registry = registry.MustRegister(Endpoint("bonsai-8b") with { MaxContextLength = 32768, Description = "new" });

        Assert.Equal(1, registry.Count);
        var endpoint = registry.Resolve("bonsai-8b")!;
        Assert.Equal(32768, endpoint.MaxContextLength);
        Assert.Equal("new", endpoint.Description);
    }

    [Fact]
    public void Register_SameId_KeepsTheFirstRegistrationTime()
    {
        var registry = RegistryOf(_time, Endpoint("bonsai-8b"));
        _time.Advance(TimeSpan.FromHours(1));

        registry = registry.MustRegister(Endpoint("bonsai-8b") with { Description = "replaced" });

        Assert.Equal(ManualTimeProvider.DefaultStart, registry.Resolve("bonsai-8b")!.RegisteredAt);
    }

    [Fact]
    public void Register_SameId_KeepsRegistrationOrderPosition()
    {
        var registry = RegistryOf(_time, Endpoint("a"), Endpoint("b"), Endpoint("c"));

        registry = registry.MustRegister(Endpoint("a") with { Description = "replaced" });

        Assert.Equal(["a", "b", "c"], registry.AllEndpoints.Select(e => e.Id.Value));
        Assert.Equal("replaced", registry.AllEndpoints[0].Description);
    }

    [Fact]
    public void Register_SameId_KeepsExistingAliases()
    {
        var registry = RegistryOf(_time, Endpoint("bonsai-8b") with { Aliases = ["gpt-4o-mini"] });

        registry = registry.MustRegister(Endpoint("bonsai-8b"));

        Assert.Equal("bonsai-8b", registry.Resolve("gpt-4o-mini")?.Id.Value);
    }

    [Fact]
    public void Register_EndpointAskingToBeDefault_BecomesDefault()
    {
        var registry = RegistryOf(_time, Endpoint("a"), Endpoint("b") with { IsDefault = true }, Endpoint("c"));

        Assert.Equal("b", registry.DefaultId);
        Assert.Equal("b", registry.DefaultEndpoint?.Id.Value);
    }

    [Fact]
    public void Register_LaterDefault_TakesOverTheDefault()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { IsDefault = true }, Endpoint("b") with { IsDefault = true });

        Assert.Equal("b", registry.DefaultId);
    }

    [Fact]
    public void Register_WithoutDefault_HasNoDefault() =>
        Assert.Null(RegistryOf(_time, Endpoint("a"), Endpoint("b")).DefaultEndpoint);

    [Fact]
    public void Register_EmptyId_IsRefused()
    {
        var result = new ModelRegistry(_time).Register(Endpoint(""));

        Assert.False(result.Succeeded);
        Assert.Contains("Id", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_Null_Throws() =>
        Assert.Throws<ArgumentNullException>(() => new ModelRegistry(_time).Register(null!));

    [Fact]
    public void Register_EndpointAliases_ResolveToIt()
    {
        var registry = RegistryOf(_time, Endpoint("bonsai-8b") with { Aliases = ["gpt-4o-mini", "org/small"] });

        Assert.Equal("bonsai-8b", registry.Resolve("gpt-4o-mini")?.Id.Value);
        Assert.Equal("bonsai-8b", registry.Resolve("org/small")?.Id.Value);
        Assert.Equal(["gpt-4o-mini", "org/small"], registry.AliasesOf("bonsai-8b"));
    }

    [Fact]
    public void Unregister_KnownId_RemovesAndReturnsTheEndpoint()
    {
        var registry = RegistryOf(_time, Endpoint("a"), Endpoint("b"));

        var (after, removed) = registry.Unregister("a");

        Assert.Equal("a", removed?.Id.Value);
        Assert.Equal(1, after.Count);
        Assert.Null(after.Resolve("a"));
        Assert.NotNull(after.Resolve("b"));
    }

    [Fact]
    public void Unregister_TheDefault_ClearsTheDefault()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { IsDefault = true }, Endpoint("b"));

        var (after, _) = registry.Unregister("a");

        Assert.Null(after.DefaultId);
        Assert.Null(after.DefaultEndpoint);
    }

    [Fact]
    public void Unregister_AnotherEndpoint_KeepsTheDefault()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { IsDefault = true }, Endpoint("b"));

        var (after, _) = registry.Unregister("b");

        Assert.Equal("a", after.DefaultEndpoint?.Id.Value);
    }

    [Fact]
    public void Unregister_DropsAliasesPointingAtIt_KeepsOthers()
    {
        var registry = RegistryOf(
            _time,
            Endpoint("a") with { Aliases = ["a1", "a2"] },
            Endpoint("b") with { Aliases = ["b1"] });

        var (after, _) = registry.Unregister("a");

        Assert.Null(after.Resolve("a1"));
        Assert.Null(after.Resolve("a2"));
        Assert.Equal("b", after.Resolve("b1")?.Id.Value);
        Assert.Equal(["b1"], after.Aliases.Keys);
    }

    [Fact]
    public void Unregister_ThenRegisterAgain_DoesNotRevivePreviousAliasesAndGetsNewTime()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { Aliases = ["old"] });
        var (after, _) = registry.Unregister("a");
        _time.Advance(TimeSpan.FromSeconds(30));

        after = after.MustRegister(Endpoint("a"));

        Assert.Null(after.Resolve("old"));
        Assert.Equal(ManualTimeProvider.DefaultStart.AddSeconds(30), after.Resolve("a")!.RegisteredAt);
    }

    [Fact]
    public void Unregister_UnknownId_ReturnsSameRegistryAndNoEndpoint()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { IsDefault = true });

        var (after, removed) = registry.Unregister("nope");

        Assert.Null(removed);
        Assert.Same(registry, after);
        Assert.Equal(1, after.Count);
    }

    [Fact]
    public void Unregister_AnAlias_DoesNotRemoveItsTarget()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { Aliases = ["alias"] });

        var (after, removed) = registry.Unregister("alias");

        Assert.Null(removed);
        Assert.Same(registry, after);
    }

    [Fact]
    public void AddAlias_ResolvesToTheTarget()
    {
        var registry = RegistryOf(_time, Endpoint("bonsai-8b"));

        registry = registry.AddAlias("gpt-4", "bonsai-8b").Must();

        Assert.Equal("bonsai-8b", registry.Resolve("gpt-4")?.Id.Value);
        Assert.Equal("bonsai-8b", registry.Aliases["gpt-4"]);
    }

    [Fact]
    public void AddAlias_SameAliasToSameTarget_Succeeds()
    {
        var registry = RegistryOf(_time, Endpoint("bonsai-8b") with { Aliases = ["gpt-4"] });

        var result = registry.AddAlias("gpt-4", "bonsai-8b");

        Assert.True(result.Succeeded);
        Assert.Equal("bonsai-8b", result.Registry.Resolve("gpt-4")?.Id.Value);
    }

    [Fact]
    public void AddAlias_UnknownTarget_IsRefused()
    {
        var result = RegistryOf(_time, Endpoint("a")).AddAlias("gpt-4", "nope");

        Assert.False(result.Succeeded);
        Assert.Contains("'nope'", result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    public void AddAlias_EmptyName_IsRefused(string alias)
    {
        var result = RegistryOf(_time, Endpoint("a")).AddAlias(alias, "a");

        Assert.False(result.Succeeded);
        Assert.Contains("Aliases", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void ResolveOrder_IdFirstThenAlias()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { Aliases = ["x"] }, Endpoint("b"));

        Assert.Equal("a", registry.Resolve("a")?.Id.Value);
        Assert.Equal("b", registry.Resolve("b")?.Id.Value);
        Assert.Equal("a", registry.Resolve("x")?.Id.Value);
    }

    [Theory]
    [InlineData("Bonsai-8b")]
    [InlineData("BONSAI-8B")]
    [InlineData("GPT-4o-mini")]
    [InlineData("bonsai-8b ")]
    [InlineData(" bonsai-8b")]
    [InlineData("bonsai")]
    [InlineData("")]
    public void Resolve_IsExactAndCaseSensitive(string name)
    {
        var registry = RegistryOf(_time, Endpoint("bonsai-8b") with { Aliases = ["gpt-4o-mini"] });

        Assert.Null(registry.Resolve(name));
    }

    [Theory]
    [InlineData("bonsai-8b:sql")]
    [InlineData("org/model")]
    [InlineData("org/model:lora/v1")]
    public void Resolve_IdsWithColonAndSlash(string id)
    {
        var registry = RegistryOf(_time, Endpoint("bonsai-8b"), Endpoint(id));

        Assert.Equal(id, registry.Resolve(id)?.Id.Value);
    }

    [Theory]
    [InlineData("bonsai-8b", "bonsai-8b")]
    [InlineData("gpt-4o-mini", "bonsai-8b")]
    [InlineData("bonsai-8b:sql", "bonsai-8b:sql")]
    public void ResolveSpan_MatchesResolveString(string name, string expectedId)
    {
        var registry = RegistryOf(_time, Endpoint("bonsai-8b") with { Aliases = ["gpt-4o-mini"] }, Endpoint("bonsai-8b:sql"));

        Assert.Same(registry.Resolve(name), registry.Resolve(name.AsSpan()));
        Assert.Equal(expectedId, registry.Resolve(name.AsSpan())?.Id.Value);
    }

    [Fact]
    public void ResolveSpan_SliceOfALargerBuffer_ResolvesOnlyTheSlice()
    {
        var registry = RegistryOf(_time, Endpoint("bonsai-8b") with { Aliases = ["gpt-4"] });
        var buffer = "{\"model\":\"bonsai-8b\"}gpt-4!".AsSpan();

        Assert.Equal("bonsai-8b", registry.Resolve(buffer.Slice(10, 9))?.Id.Value);
        Assert.Equal("bonsai-8b", registry.Resolve(buffer.Slice(21, 5))?.Id.Value);
        Assert.Null(registry.Resolve(buffer.Slice(10, 8)));
        Assert.Null(registry.Resolve(buffer));
    }

    [Fact]
    public void MoveAlias_MovesItToAnotherEndpoint()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { Aliases = ["x"] }, Endpoint("b"));

        registry = registry.MoveAlias("x", "b").Must();

        Assert.Equal("b", registry.Resolve("x")?.Id.Value);
        Assert.Empty(registry.AliasesOf("a"));
    }

    [Fact]
    public void MoveAlias_UnknownAlias_IsRefused()
    {
        var result = RegistryOf(_time, Endpoint("a")).MoveAlias("x", "a");

        Assert.False(result.Succeeded);
        Assert.Contains("'x'", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void RemoveAlias_StopsResolving()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { Aliases = ["x", "y"] });

        registry = registry.RemoveAlias("x");

        Assert.Null(registry.Resolve("x"));
        Assert.Equal("a", registry.Resolve("y")?.Id.Value);
    }

    [Fact]
    public void RemoveAlias_Unknown_ReturnsSameRegistry()
    {
        var registry = RegistryOf(_time, Endpoint("a"));

        Assert.Same(registry, registry.RemoveAlias("x"));
    }

    [Fact]
    public void AliasesOf_ReturnsTheEndpointsAliasesSorted()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { Aliases = ["zeta", "Alpha", "beta"] }, Endpoint("b") with { Aliases = ["other"] });

        Assert.Equal(["Alpha", "beta", "zeta"], registry.AliasesOf("a"));
        Assert.Empty(registry.AliasesOf("nope"));
    }

    [Fact]
    public void SetDefault_KnownId_BecomesDefault()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { IsDefault = true }, Endpoint("b"));

        registry = registry.SetDefault("b").Must();

        Assert.Equal("b", registry.DefaultEndpoint?.Id.Value);
    }

    [Fact]
    public void SetDefault_Null_ClearsTheDefault()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { IsDefault = true });

        registry = registry.SetDefault(null).Must();

        Assert.Null(registry.DefaultEndpoint);
    }

    [Fact]
    public void SetDefault_UnknownId_IsRefused()
    {
        var result = RegistryOf(_time, Endpoint("a")).SetDefault("nope");

        Assert.False(result.Succeeded);
        Assert.Contains("'nope'", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void DefaultEndpoint_MayBeNotReady()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { IsDefault = true, Status = EndpointStatus.Loading });

        Assert.Equal("a", registry.DefaultEndpoint?.Id.Value);
    }

    [Fact]
    public void AvailableEndpoints_AreOnlyReady_InRegistrationOrder()
    {
        var registry = RegistryOf(
            _time,
            Endpoint("c"),
            Endpoint("loading") with { Status = EndpointStatus.Loading },
            Endpoint("a"),
            Endpoint("error") with { Status = EndpointStatus.Error },
            Endpoint("disabled") with { Status = EndpointStatus.Disabled },
            Endpoint("b"));

        Assert.Equal(["c", "a", "b"], registry.AvailableEndpoints.Select(e => e.Id.Value));
    }

    [Fact]
    public void AllEndpoints_IncludeNotReady_InRegistrationOrder()
    {
        var registry = RegistryOf(
            _time,
            Endpoint("c"),
            Endpoint("loading") with { Status = EndpointStatus.Loading },
            Endpoint("a"),
            Endpoint("disabled") with { Status = EndpointStatus.Disabled });

        Assert.Equal(["c", "loading", "a", "disabled"], registry.AllEndpoints.Select(e => e.Id.Value));
    }

    [Theory]
    [InlineData(EndpointStatus.Loading)]
    [InlineData(EndpointStatus.Error)]
    [InlineData(EndpointStatus.Disabled)]
    [InlineData(EndpointStatus.Ready)]
    public void SetStatus_KnownId_ChangesStatus(EndpointStatus status)
    {
        var registry = RegistryOf(_time, Endpoint("a") with { Status = status == EndpointStatus.Ready ? EndpointStatus.Loading : EndpointStatus.Ready });

        var (after, found) = registry.SetStatus("a", status);

        Assert.True(found);
        Assert.Equal(status, after.Resolve("a")!.Status);
        Assert.Equal(status.IsAvailable(), after.AvailableEndpoints.Any());
    }

    [Fact]
    public void SetStatus_KeepsEverythingElse()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { IsDefault = true, Aliases = ["x"], MaxContextLength = 8192 }, Endpoint("b"));
        _time.Advance(TimeSpan.FromHours(2));

        var (after, _) = registry.SetStatus("a", EndpointStatus.Disabled);

        var endpoint = after.Resolve("x")!;
        Assert.Equal("a", endpoint.Id.Value);
        Assert.Equal(8192, endpoint.MaxContextLength);
        Assert.Equal(ManualTimeProvider.DefaultStart, endpoint.RegisteredAt);
        Assert.Equal("a", after.DefaultId);
        Assert.Equal(["a", "b"], after.AllEndpoints.Select(e => e.Id.Value));
    }

    [Fact]
    public void SetStatus_UnknownId_ReturnsNotFoundAndSameRegistry()
    {
        var registry = RegistryOf(_time, Endpoint("a"));

        var (after, found) = registry.SetStatus("nope", EndpointStatus.Disabled);

        Assert.False(found);
        Assert.Same(registry, after);
    }

    [Fact]
    public void SetStatus_SameStatus_ReturnsSameRegistry()
    {
        var registry = RegistryOf(_time, Endpoint("a"));

        var (after, found) = registry.SetStatus("a", EndpointStatus.Ready);

        Assert.True(found);
        Assert.Same(registry, after);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    public void Count_IsTheNumberOfEndpoints(int count)
    {
        var registry = RegistryOf(_time, [.. Enumerable.Range(0, count).Select(i => Endpoint($"m{i}"))]);

        Assert.Equal(count, registry.Count);
        Assert.Equal(count == 0, registry.IsEmpty);
    }

    [Fact]
    public void Count_DoesNotCountAliasesOrReplacements()
    {
        var registry = RegistryOf(_time, Endpoint("a") with { Aliases = ["x", "y"] }, Endpoint("b"), Endpoint("a"));

        Assert.Equal(2, registry.Count);
    }
}
