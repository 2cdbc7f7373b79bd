using ModelRouting.Registry;

namespace ModelRouting.Tests.Registry;

public class ModelEndpointTests
{
    [Fact]
    public void New_HasSeedDefaults()
    {
        var endpoint = new ModelEndpoint("bonsai-8b", "qwen3-8b", "pool");

        Assert.Equal(new ModelId("bonsai-8b"), endpoint.Id);
        Assert.Equal("qwen3-8b", endpoint.BaseModel);
        Assert.Equal("pool", endpoint.Cluster);
        Assert.Equal("bonsai-8b", endpoint.DisplayName);
        Assert.Equal("", endpoint.Description);
        Assert.Null(endpoint.Adapter);
        Assert.Null(endpoint.Adapters);
        Assert.False(endpoint.HasAdapter);
        Assert.Equal(4096, endpoint.MaxContextLength);
        Assert.Equal(ModelEndpoint.DefaultMaxContextLength, endpoint.MaxContextLength);
        Assert.False(endpoint.IsDefault);
        Assert.Equal(EndpointStatus.Ready, endpoint.Status);
        Assert.Empty(endpoint.Aliases);
        Assert.Null(endpoint.TokenEncoding);
        Assert.Equal(default, endpoint.RegisteredAt);
    }

    [Fact]
    public void DisplayName_DefaultsToId() =>
        Assert.Equal("bonsai-8b:sql", new ModelEndpoint("bonsai-8b:sql", "qwen3-8b", "pool").DisplayName);

    [Fact]
    public void DisplayName_SetToNull_FallsBackToId() =>
        Assert.Equal("bonsai-8b", new ModelEndpoint("bonsai-8b", "qwen3-8b", "pool") { DisplayName = null }.DisplayName);

    [Fact]
    public void DisplayName_WhenSet_IsKept() =>
        Assert.Equal("Bonsai 8B", new ModelEndpoint("bonsai-8b", "qwen3-8b", "pool") { DisplayName = "Bonsai 8B" }.DisplayName);

    [Fact]
    public void UpstreamModel_WithoutAdapter_DefaultsToBaseModel() =>
        Assert.Equal("qwen3-8b", new ModelEndpoint("bonsai-8b", "qwen3-8b", "pool").UpstreamModel);

    [Fact]
    public void UpstreamModel_WithAdapter_DefaultsToAdapter()
    {
        var endpoint = new ModelEndpoint("bonsai-8b:sql", "qwen3-8b", "pool") { Adapter = "sql-lora" };

        Assert.Equal("sql-lora", endpoint.UpstreamModel);
        Assert.True(endpoint.HasAdapter);
    }

    [Fact]
    public void UpstreamModel_WithAdapterStack_DefaultsToBaseModel()
    {
        var endpoint = new ModelEndpoint("bonsai-8b:mix", "qwen3-8b", "pool")
        {
            Adapters = AdapterStack.Empty.Add("sql", 0.7).Add("chat", 0.3),
        };

        Assert.Equal("qwen3-8b", endpoint.UpstreamModel);
        Assert.True(endpoint.HasAdapter);
    }

    [Fact]
    public void UpstreamModel_WhenSet_WinsOverAdapterAndBaseModel()
    {
        var endpoint = new ModelEndpoint("bonsai-8b:sql", "qwen3-8b", "pool") { Adapter = "sql", UpstreamModel = "Qwen/Qwen3-8B" };

        Assert.Equal("Qwen/Qwen3-8B", endpoint.UpstreamModel);
    }

    [Fact]
    public void With_ChangesOnlyTheCopy()
    {
        var original = new ModelEndpoint("bonsai-8b", "qwen3-8b", "pool");

        var loading = original with { Status = EndpointStatus.Loading, MaxContextLength = 32768 };

        Assert.Equal(EndpointStatus.Loading, loading.Status);
        Assert.Equal(32768, loading.MaxContextLength);
        Assert.Equal(EndpointStatus.Ready, original.Status);
        Assert.Equal(4096, original.MaxContextLength);
    }
}
