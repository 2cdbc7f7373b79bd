using System.Text.Json;
using ModelRouting.Registry;
using ModelRouting.Routing;
using ModelRouting.Tests.TestSupport;
using static ModelRouting.Tests.TestSupport.RegistryTestExtensions;

namespace ModelRouting.Tests.Routing;

public class ModelsListTests
{
    private const long StartUnix = 1735689600; // ManualTimeProvider.DefaultStart

    private readonly ManualTimeProvider _time = new();

    [Fact]
    public void ModelsList_ContainsOnlyReadyEndpoints_InRegistrationOrder()
    {
        var router = new ModelRouter(RegistryOf(
            _time,
            Endpoint("c"),
            Endpoint("loading") with { Status = EndpointStatus.Loading },
            Endpoint("a"),
            Endpoint("error") with { Status = EndpointStatus.Error },
            Endpoint("disabled") with { Status = EndpointStatus.Disabled },
            Endpoint("b")));

        Assert.Equal(["c", "a", "b"], router.ModelsList().Select(e => e.Id));
    }

    [Fact]
    public void ModelsList_EmptyRegistry_IsEmpty() => Assert.Empty(new ModelRouter(ModelRegistry.Empty).ModelsList());

    [Fact]
    public void ModelsList_DoesNotListAliases()
    {
        var router = new ModelRouter(RegistryOf(_time, Endpoint("a") with { Aliases = ["gpt-4"] }));

        Assert.Equal(["a"], router.ModelsList().Select(e => e.Id));
    }

    [Fact]
    public void ModelsList_BaseEndpoint_HasAllFields()
    {
        var router = new ModelRouter(RegistryOf(_time, Endpoint("bonsai-8b", "qwen3-8b") with { MaxContextLength = 32768 }));

        var entry = Assert.Single(router.ModelsList());

        Assert.Equal("bonsai-8b", entry.Id);
        Assert.Equal("model", entry.ObjectType);
        Assert.Equal(StartUnix, entry.Created);
        Assert.Equal(ModelRouter.OwnedBy, entry.OwnedBy);
        Assert.Equal("qwen3-8b", entry.Root);
        Assert.Null(entry.Parent);
        Assert.Equal(32768, entry.MaxModelLen);
    }

    [Fact]
    public void ModelsList_AdapterEndpoint_HasBaseEndpointAsParent()
    {
        var router = new ModelRouter(RegistryOf(
            _time,
            Endpoint("bonsai-8b", "qwen3-8b"),
            Endpoint("bonsai-8b:sql", "qwen3-8b") with { Adapter = "sql" },
            Endpoint("bonsai-8b:mix", "qwen3-8b") with { Adapters = AdapterStack.Empty.Add("sql", 0.5).Add("chat", 0.5) }));

        var entries = router.ModelsList().ToDictionary(e => e.Id);

        Assert.Null(entries["bonsai-8b"].Parent);
        Assert.Equal("bonsai-8b", entries["bonsai-8b:sql"].Parent);
        Assert.Equal("qwen3-8b", entries["bonsai-8b:sql"].Root);
        Assert.Equal("bonsai-8b", entries["bonsai-8b:mix"].Parent);
    }

    [Fact]
    public void ModelsList_AdapterWhoseBaseEndpointIsNotReady_StillNamesItAsParent()
    {
        var router = new ModelRouter(RegistryOf(
            _time,
            Endpoint("bonsai-8b", "qwen3-8b") with { Status = EndpointStatus.Loading },
            Endpoint("bonsai-8b:sql", "qwen3-8b") with { Adapter = "sql" }));

        var entry = Assert.Single(router.ModelsList());

        Assert.Equal("bonsai-8b", entry.Parent);
    }

    [Fact]
    public void ModelsList_AdapterWithoutBaseEndpoint_FallsBackToTheBaseModelName()
    {
        var router = new ModelRouter(RegistryOf(_time, Endpoint("bonsai-8b:sql", "qwen3-8b") with { Adapter = "sql" }));

        Assert.Equal("qwen3-8b", Assert.Single(router.ModelsList()).Parent);
    }

    [Fact]
    public void ModelsList_EndpointWithColonIdButNoAdapter_HasNoParent()
    {
        var router = new ModelRouter(RegistryOf(_time, Endpoint("llama3:8b", "llama3:8b")));

        Assert.Null(Assert.Single(router.ModelsList()).Parent);
    }

    [Fact]
    public void ModelListEntry_SerializesWithOpenAINames()
    {
        var router = new ModelRouter(RegistryOf(
            _time,
            Endpoint("bonsai-8b", "qwen3-8b"),
            Endpoint("bonsai-8b:sql", "qwen3-8b") with { Adapter = "sql", MaxContextLength = 8192 }));

        var json = JsonSerializer.Serialize(router.ModelsList());
        using var document = JsonDocument.Parse(json);
        var adapter = document.RootElement[1];

        Assert.Equal(
            ["object", "id", "created", "owned_by", "root", "parent", "max_model_len"],
            adapter.EnumerateObject().Select(p => p.Name));
        Assert.Equal("model", adapter.GetProperty("object").GetString());
        Assert.Equal("bonsai-8b:sql", adapter.GetProperty("id").GetString());
        Assert.Equal(StartUnix, adapter.GetProperty("created").GetInt64());
        Assert.Equal(ModelRouter.OwnedBy, adapter.GetProperty("owned_by").GetString());
        Assert.Equal("qwen3-8b", adapter.GetProperty("root").GetString());
        Assert.Equal("bonsai-8b", adapter.GetProperty("parent").GetString());
        Assert.Equal(8192, adapter.GetProperty("max_model_len").GetInt32());
        Assert.Equal(JsonValueKind.Null, document.RootElement[0].GetProperty("parent").ValueKind);
        Assert.DoesNotContain("ObjectType", json, StringComparison.Ordinal);
    }

    [Fact]
    public void ToListEntry_MatchesTheListEntry()
    {
        var registry = RegistryOf(_time, Endpoint("a"));
        var router = new ModelRouter(registry);

        Assert.Equal(Assert.Single(router.ModelsList()), router.ToListEntry(registry.Resolve("a")!));
    }

    /// <summary>Seed weakness: <c>created</c> was "now" on every call. It is now the registration time.</summary>
    [Fact]
    public void Created_IsTheRegistrationTime_AndStableAcrossCalls()
    {
        var registry = RegistryOf(_time, Endpoint("a"));
        _time.Advance(TimeSpan.FromSeconds(90));
        registry = registry.MustRegister(Endpoint("b"));
        var router = new ModelRouter(registry);

        var first = router.ModelsList();
        _time.Advance(TimeSpan.FromDays(3));
        var second = router.ModelsList();

        Assert.Equal([StartUnix, StartUnix + 90], first.Select(e => e.Created));
        Assert.Equal(first, second);
    }

    [Fact]
    public void Created_IsStableAcrossStatusChangesAndReplacement()
    {
        var registry = RegistryOf(_time, Endpoint("a"));
        _time.Advance(TimeSpan.FromHours(1));

        registry = registry.SetStatus("a", EndpointStatus.Loading).Registry.SetStatus("a", EndpointStatus.Ready).Registry;
        registry = registry.MustRegister(Endpoint("a") with { MaxContextLength = 65536 });

        Assert.Equal(StartUnix, Assert.Single(new ModelRouter(registry).ModelsList()).Created);
    }
}
