using ModelRouting.Configuration;
using ModelRouting.Registry;
using ModelRouting.Routing;
using ModelRouting.Tests.TestSupport;
using static ModelRouting.Tests.Configuration.ConfigTestData;

namespace ModelRouting.Tests.Configuration;

public class ModelRegistryFactoryTests
{
    private readonly ManualTimeProvider _time = new();

    private static ModelRoutingOptions ValidOptions() => Options(
        new ModelEndpointOptions
        {
            Id = "bonsai-8b",
            BaseModel = "qwen3-8b",
            Cluster = "qwen-pool",
            MaxContextLength = 32768,
            IsDefault = true,
            Description = "general",
            Aliases = ["gpt-4o-mini", "org/small"],
        },
        new ModelEndpointOptions { Id = "bonsai-8b:sql", BaseModel = "qwen3-8b", Adapter = "sql", Cluster = "qwen-pool", MaxContextLength = 8192 },
        new ModelEndpointOptions
        {
            Id = "bonsai-8b:mix",
            BaseModel = "qwen3-8b",
            Cluster = "qwen-pool",
            Adapters = [new() { Name = "sql", Weight = 0.7 }, new() { Name = "chat", Weight = 0.7 }],
        },
        new ModelEndpointOptions
        {
            Id = "llama3",
            Cluster = "llama-pool",
            Status = "loading",
            UpstreamModel = "meta-llama/Llama-3-8B",
            DisplayName = "Llama 3",
            TokenEncoding = "cl100k_base",
        });

    [Fact]
    public void Build_ValidConfig_BuildsTheRegistry()
    {
        var (registry, errors) = ModelRegistryFactory.Build(ValidOptions(), Clusters, previous: null, _time);

        Assert.Empty(errors);
        Assert.NotNull(registry);
        Assert.Equal(["bonsai-8b", "bonsai-8b:sql", "bonsai-8b:mix", "llama3"], registry.AllEndpoints.Select(e => e.Id.Value));
        Assert.Equal("bonsai-8b", registry.DefaultId);
        Assert.Equal("bonsai-8b", registry.Resolve("gpt-4o-mini")?.Id.Value);
        Assert.Equal("bonsai-8b", registry.Resolve("org/small")?.Id.Value);
        Assert.All(registry.AllEndpoints, e => Assert.Equal(ManualTimeProvider.DefaultStart, e.RegisteredAt));
    }

    [Fact]
    public void Build_ValidConfig_CopiesEveryField()
    {
        var registry = MustBuild(ValidOptions(), _time);

        var bonsai = registry.Resolve("bonsai-8b")!;
        Assert.Equal("qwen3-8b", bonsai.BaseModel);
        Assert.Equal("qwen-pool", bonsai.Cluster);
        Assert.Equal(32768, bonsai.MaxContextLength);
        Assert.True(bonsai.IsDefault);
        Assert.Equal("general", bonsai.Description);
        Assert.Equal("bonsai-8b", bonsai.DisplayName);
        Assert.Equal("qwen3-8b", bonsai.UpstreamModel);
        Assert.Equal(EndpointStatus.Ready, bonsai.Status);

        var sql = registry.Resolve("bonsai-8b:sql")!;
        Assert.Equal("sql", sql.Adapter);
        Assert.Equal("sql", sql.UpstreamModel);

        var llama = registry.Resolve("llama3")!;
        Assert.Equal("meta-llama/Llama-3-8B", llama.UpstreamModel);
        Assert.Equal("Llama 3", llama.DisplayName);
        Assert.Equal("cl100k_base", llama.TokenEncoding);
        Assert.Equal("llama-pool", llama.Cluster);
        Assert.Equal(ModelEndpoint.DefaultMaxContextLength, llama.MaxContextLength);
        Assert.Equal("", llama.Description);
    }

    [Fact]
    public void Build_BaseModelMissing_DefaultsToId()
    {
        var registry = MustBuild(Options(new ModelEndpointOptions { Id = "llama3:8b", Cluster = "llama-pool" }), _time);

        var endpoint = registry.Resolve("llama3:8b")!;
        Assert.Equal("llama3:8b", endpoint.BaseModel);
        Assert.Equal("llama3:8b", endpoint.UpstreamModel);
    }

    [Theory]
    [InlineData(null, EndpointStatus.Ready)]
    [InlineData("Ready", EndpointStatus.Ready)]
    [InlineData("loading", EndpointStatus.Loading)]
    [InlineData("LOADING", EndpointStatus.Loading)]
    [InlineData("error", EndpointStatus.Error)]
    [InlineData("Disabled", EndpointStatus.Disabled)]
    public void Build_Status_IsCaseInsensitiveAndDefaultsToReady(string? status, EndpointStatus expected)
    {
        var entry = Entry("a");
        entry.Status = status;

        var registry = MustBuild(Options(entry), _time);

        Assert.Equal(expected, registry.Resolve("a")!.Status);
    }

    [Fact]
    public void Build_AdapterStack_IsNormalized()
    {
        var registry = MustBuild(ValidOptions(), _time);

        var stack = registry.Resolve("bonsai-8b:mix")!.Adapters;
        Assert.NotNull(stack);
        Assert.Equal(["sql", "chat"], stack.Adapters.Select(a => a.Name));
        Assert.Equal(0.5, stack.Adapters[0].Weight, 1e-12);
        Assert.Equal(0.5, stack.Adapters[1].Weight, 1e-12);
        Assert.Equal(1.0, stack.TotalWeight, 1e-12);
    }

    [Fact]
    public void Build_AdapterStackWeightDefault_IsOneEach()
    {
        var entry = Entry("a:mix");
        entry.Adapters = [new() { Name = "x" }, new() { Name = "y" }, new() { Name = "z" }, new() { Name = "w" }];

        var stack = MustBuild(Options(entry), _time).Resolve("a:mix")!.Adapters!;

        Assert.All(stack.Adapters, a => Assert.Equal(0.25, a.Weight, 1e-12));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void Build_BlankUpstreamModel_DefaultsToBaseModel(string blank)
    {
        var entry = Entry("a");
        entry.UpstreamModel = blank;

        var endpoint = MustBuild(Options(entry), _time).Resolve("a")!;

        Assert.Equal("qwen3-8b", endpoint.UpstreamModel);
    }

    [Fact]
    public void Build_NoEndpoints_BuildsAnEmptyRegistry()
    {
        var registry = MustBuild(new ModelRoutingOptions(), _time);

        Assert.True(registry.IsEmpty);
    }

    [Fact]
    public void Build_NoDefault_LeavesDefaultUnset()
    {
        var registry = MustBuild(Options(Entry("a"), Entry("b")), _time);

        Assert.Null(registry.DefaultId);
    }

    [Fact]
    public void Build_ThenRoute_UsesTheConfiguredEndpoints()
    {
        var router = new ModelRouter(MustBuild(ValidOptions(), _time));

        Assert.Equal("bonsai-8b", router.Route(null).Endpoint?.Id.Value);
        Assert.Equal("bonsai-8b:sql", router.Route("bonsai-8b:sql").Endpoint?.Id.Value);
        Assert.Equal("loading", router.Route("llama3").Error?.Status);
        Assert.Equal(["bonsai-8b", "bonsai-8b:sql", "bonsai-8b:mix"], router.ModelsList().Select(e => e.Id));
    }

    /// <summary>
    /// Seed weakness: <c>created</c> was "now" on every call. Rebuilding from configuration (a hot
    /// reload) with the registry in force keeps each surviving endpoint's registration time.
    /// </summary>
    [Fact]
    public void Build_WithPrevious_KeepsRegistrationTimes_SoCreatedIsStableAcrossReloads()
    {
        var first = MustBuild(Options(Entry("a"), Entry("b")), _time);
        var createdBefore = new ModelRouter(first).ModelsList().ToDictionary(e => e.Id, e => e.Created);
        _time.Advance(TimeSpan.FromMinutes(10));

        var changedA = Entry("a");
        changedA.MaxContextLength = 65536;
        var second = MustBuild(Options(changedA, Entry("c"), Entry("b")), _time, previous: first);
        var createdAfter = new ModelRouter(second).ModelsList().ToDictionary(e => e.Id, e => e.Created);

        Assert.Equal(createdBefore["a"], createdAfter["a"]);
        Assert.Equal(createdBefore["b"], createdAfter["b"]);
        Assert.Equal(createdBefore["a"] + 600, createdAfter["c"]);
        Assert.Equal(65536, second.Resolve("a")!.MaxContextLength);
        Assert.Equal(ManualTimeProvider.DefaultStart, first.Resolve("a")!.RegisteredAt);
    }

    [Fact]
    public void Build_WithoutPrevious_StampsTheCurrentTime()
    {
        _ = MustBuild(Options(Entry("a")), _time);
        _time.Advance(TimeSpan.FromMinutes(10));

        var rebuilt = MustBuild(Options(Entry("a")), _time);

        Assert.Equal(ManualTimeProvider.DefaultStart.AddMinutes(10), rebuilt.Resolve("a")!.RegisteredAt);
    }

    [Fact]
    public void Build_WithPrevious_EndpointRemovedThenReadded_GetsANewTime()
    {
        var first = MustBuild(Options(Entry("a"), Entry("b")), _time);
        _time.Advance(TimeSpan.FromMinutes(1));
        var second = MustBuild(Options(Entry("a")), _time, previous: first);
        _time.Advance(TimeSpan.FromMinutes(1));

        var third = MustBuild(Options(Entry("a"), Entry("b")), _time, previous: second);

        Assert.Equal(ManualTimeProvider.DefaultStart, third.Resolve("a")!.RegisteredAt);
        Assert.Equal(ManualTimeProvider.DefaultStart.AddMinutes(2), third.Resolve("b")!.RegisteredAt);
    }

    [Fact]
    public void Build_WithPrevious_DoesNotChangeThePrevious()
    {
        var first = MustBuild(Options(Entry("a")), _time);

        _ = MustBuild(Options(Entry("b")), _time, previous: first);

        Assert.Equal(["a"], first.AllEndpoints.Select(e => e.Id.Value));
    }
}
