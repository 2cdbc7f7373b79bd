using System.Collections.Frozen;
using Microsoft.AspNetCore.Http;
using ModelRouting.Adapters;
using ModelRouting.Health;
using ModelRouting.Registry;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Tests.Adapters;

/// <summary>Issue 9: requests for a reconciled adapter go only to the destinations it is loaded on.</summary>
public sealed class AdapterPlacementTests
{
    private static readonly ModelEndpoint s_adapter = new(new ModelId("qwen:sql"), "qwen", "vllm") { Adapter = "sql" };

    private static (DefaultHttpContext Context, Feature Feature) Context(params string[] addresses)
    {
        var feature = new Feature
        {
            AvailableDestinations = [.. addresses.Select((a, i) => new DestinationState($"d{i}", new DestinationModel(new DestinationConfig { Address = a })))],
        };
        var context = new DefaultHttpContext();
        context.Features.Set<IReverseProxyFeature>(feature);
        return (context, feature);
    }

    private static EndpointConditions LoadedOn(params string[] addresses) =>
        EndpointConditions.Empty.WithAdapterLoad(s_adapter.Id.Value, new AdapterLoadState(EndpointStatus.Ready, "", 1, addresses.ToFrozenSet()));

    [Fact]
    public void TryNarrow_LoadedOnSome_KeepsOnlyThose()
    {
        var (context, feature) = Context("http://a", "http://b", "http://c");

        Assert.True(AdapterPlacement.TryNarrow(context, s_adapter, LoadedOn("http://b", "http://c")));

        Assert.Equal(["http://b", "http://c"], feature.AvailableDestinations.Select(d => d.Model.Config.Address));
    }

    [Fact]
    public void TryNarrow_LoadedOnNoAvailableDestination_ReturnsFalse()
    {
        var (context, feature) = Context("http://a");

        Assert.False(AdapterPlacement.TryNarrow(context, s_adapter, LoadedOn("http://b")));
        Assert.Single(feature.AvailableDestinations);
        Assert.Equal(503, AdapterPlacement.NotPlaced(s_adapter, 7).StatusCode);
        Assert.Equal(7, AdapterPlacement.NotPlaced(s_adapter, 7).RetryAfterSeconds);
    }

    [Fact]
    public void TryNarrow_EndpointNotReconciled_LeavesDestinationsAlone()
    {
        var (context, feature) = Context("http://a", "http://b");
        var before = feature.AvailableDestinations;

        Assert.True(AdapterPlacement.TryNarrow(context, s_adapter, EndpointConditions.Empty));
        Assert.True(AdapterPlacement.TryNarrow(context, s_adapter, EndpointConditions.Empty.WithAdapterLoad(s_adapter.Id.Value, new AdapterLoadState(EndpointStatus.Loading, "", 1))));
        Assert.True(AdapterPlacement.TryNarrow(context, s_adapter, LoadedOn("http://a", "http://b")));

        Assert.Same(before, feature.AvailableDestinations);
    }

    private sealed class Feature : IReverseProxyFeature
    {
        public RouteModel Route => throw new NotSupportedException();

        public ClusterModel Cluster => throw new NotSupportedException();

        public IReadOnlyList<DestinationState> AllDestinations => AvailableDestinations;

        public IReadOnlyList<DestinationState> AvailableDestinations { get; set; } = [];

        public DestinationState? ProxiedDestination { get; set; }
    }
}
