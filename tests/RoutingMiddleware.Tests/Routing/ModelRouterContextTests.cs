using ModelRouting.Registry;
using ModelRouting.Routing;
using static ModelRouting.Tests.TestSupport.RegistryTestExtensions;

namespace ModelRouting.Tests.Routing;

public class ModelRouterContextTests
{
    private static ModelEndpoint Sized(string id, int maxContext, EndpointStatus status = EndpointStatus.Ready, bool isDefault = false) =>
        Endpoint(id) with { MaxContextLength = maxContext, Status = status, IsDefault = isDefault };

    private static ModelRouter Router(params ModelEndpoint[] endpoints) => new(RegistryOf(endpoints));

    [Theory]
    [InlineData(0)]
    [InlineData(4000)]
    [InlineData(8192)]
    public void RouteForContext_NamedModelThatFits_ReturnsIt(long required)
    {
        var result = Router(Sized("small", 8192), Sized("big", 131072)).RouteForContext("small", required);

        Assert.Equal("small", result.Endpoint?.Id.Value);
        Assert.False(result.IsContextFallback);
    }

    [Fact]
    public void RouteForContext_NamedModelTooSmall_ReturnsContextTooLongWithoutSwitching()
    {
        var result = Router(Sized("small", 8192, isDefault: true), Sized("big", 131072)).RouteForContext("small", 9120);

        Assert.False(result.Succeeded);
        Assert.Null(result.Endpoint);
        Assert.False(result.IsContextFallback);
        Assert.Equal(RoutingErrorKind.ContextTooLong, result.Error.Kind);
        Assert.Equal("small", result.Error.Model);
        Assert.Equal(9120, result.Error.Required);
        Assert.Equal(8192, result.Error.Available);
        Assert.Contains("9120", result.Error.Message, StringComparison.Ordinal);
        Assert.Contains("8192", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal("model 'small' cannot handle context length 9120 (max: 8192)", result.Error.Message);
    }

    [Fact]
    public void RouteForContext_NamedByAliasTooSmall_ReportsTheEndpointId()
    {
        var result = Router(Sized("small", 8192) with { Aliases = ["gpt-4o-mini"] }, Sized("big", 131072))
            .RouteForContext("gpt-4o-mini", 10000);

        Assert.Equal(RoutingErrorKind.ContextTooLong, result.Error?.Kind);
        Assert.Equal("small", result.Error?.Model);
    }

    [Fact]
    public void RouteForContext_NamedUnknown_ReturnsModelNotFound() =>
        Assert.Equal(RoutingErrorKind.ModelNotFound, Router(Sized("a", 8192)).RouteForContext("b", 1).Error?.Kind);

    [Fact]
    public void RouteForContext_NamedNotReady_ReturnsModelNotReadyBeforeCheckingContext()
    {
        var result = Router(Sized("a", 100, EndpointStatus.Loading)).RouteForContext("a", 1_000_000);

        Assert.Equal(RoutingErrorKind.ModelNotReady, result.Error?.Kind);
        Assert.Equal("loading", result.Error?.Status);
    }

    [Fact]
    public void RouteForContext_UnnamedDefaultFits_ReturnsDefault()
    {
        var result = Router(Sized("big", 131072), Sized("small", 8192, isDefault: true)).RouteForContext(null, 8192);

        Assert.Equal("small", result.Endpoint?.Id.Value);
        Assert.False(result.IsContextFallback);
    }

    [Theory]
    [InlineData(8193)]
    [InlineData(32768)]
    [InlineData(131072)]
    public void RouteForContext_UnnamedDefaultTooSmall_FallsBackToLargestReadyThatFits(long required)
    {
        var result = Router(
                Sized("default", 8192, isDefault: true),
                Sized("medium", 32768),
                Sized("largest", 131072),
                Sized("mid2", 65536))
            .RouteForContext(null, required);

        Assert.True(result.Succeeded);
        Assert.Equal("largest", result.Endpoint.Id.Value);
        Assert.True(result.IsContextFallback);
        Assert.Null(result.Error);
    }

    [Fact]
    public void RouteForContext_Fallback_IgnoresEndpointsThatAreNotReady()
    {
        var result = Router(
                Sized("default", 8192, isDefault: true),
                Sized("huge-loading", 1_000_000, EndpointStatus.Loading),
                Sized("huge-error", 900_000, EndpointStatus.Error),
                Sized("huge-disabled", 800_000, EndpointStatus.Disabled),
                Sized("ready", 32768))
            .RouteForContext(null, 16000);

        Assert.Equal("ready", result.Endpoint?.Id.Value);
        Assert.True(result.IsContextFallback);
    }

    [Fact]
    public void RouteForContext_UnnamedNothingFits_ReturnsContextTooLongForTheDefault()
    {
        var result = Router(
                Sized("default", 8192, isDefault: true),
                Sized("medium", 32768),
                Sized("huge-loading", 1_000_000, EndpointStatus.Loading))
            .RouteForContext(null, 50000);

        Assert.False(result.Succeeded);
        Assert.False(result.IsContextFallback);
        Assert.Equal(RoutingErrorKind.ContextTooLong, result.Error.Kind);
        Assert.Equal("default", result.Error.Model);
        Assert.Equal(50000, result.Error.Required);
        Assert.Equal(8192, result.Error.Available);
    }

    [Fact]
    public void RouteForContext_UnnamedNoDefault_ReturnsNoModelsAvailable() =>
        Assert.Equal(RoutingErrorKind.NoModelsAvailable, Router(Sized("a", 1_000_000)).RouteForContext(null, 10).Error?.Kind);

    [Fact]
    public void RouteForContext_UnnamedDefaultNotReady_ReturnsModelNotReady()
    {
        var result = Router(Sized("default", 8192, EndpointStatus.Disabled, isDefault: true), Sized("big", 131072))
            .RouteForContext(null, 100);

        Assert.Equal(RoutingErrorKind.ModelNotReady, result.Error?.Kind);
        Assert.Equal("disabled", result.Error?.Status);
    }

    [Fact]
    public void RouteForContext_Span_MatchesString()
    {
        var router = Router(Sized("small", 8192, isDefault: true), Sized("big", 131072));

        Assert.Equal(RoutingErrorKind.ContextTooLong, router.RouteForContext("small".AsSpan(), named: true, 9000).Error?.Kind);
        var fallback = router.RouteForContext([], named: false, 9000);
        Assert.Equal("big", fallback.Endpoint?.Id.Value);
        Assert.True(fallback.IsContextFallback);
    }

    [Fact]
    public void RouteForContext_LongRequirement_ReportsTheFullNumber()
    {
        var result = Router(Sized("a", int.MaxValue)).RouteForContext("a", (long)int.MaxValue + 1);

        Assert.Equal((long)int.MaxValue + 1, result.Error?.Required);
        Assert.Equal(int.MaxValue, result.Error?.Available);
    }

    /// <summary>
    /// Seed weakness: <c>max_by_key</c> over a HashMap picked an arbitrary endpoint among equal context
    /// lengths. Ties now go to the first registered, whatever order the others were registered in.
    /// </summary>
    [Theory]
    [InlineData("a,b,c", "a")]
    [InlineData("b,a,c", "b")]
    [InlineData("c,b,a", "c")]
    [InlineData("b,c,a", "b")]
    [InlineData("c,a,b", "c")]
    [InlineData("a,c,b", "a")]
    public void RouteForContext_FallbackTie_FirstRegisteredWins(string order, string expected)
    {
        var endpoints = new List<ModelEndpoint> { Sized("default", 4096, isDefault: true), Sized("smaller", 16384) };
        endpoints.AddRange(order.Split(',').Select(id => Sized(id, 65536)));
        endpoints.Add(Sized("late-not-ready", 65536, EndpointStatus.Loading));
        var router = Router([.. endpoints]);

        for (var attempt = 0; attempt < 5; attempt++)
        {
            var result = router.RouteForContext(null, 20000);

            Assert.Equal(expected, result.Endpoint?.Id.Value);
            Assert.True(result.IsContextFallback);
        }
    }

    [Fact]
    public void RouteForContext_FallbackTie_ReplacingTheFirstKeepsItFirst()
    {
        var registry = RegistryOf(Sized("default", 4096, isDefault: true), Sized("first", 65536), Sized("second", 65536));
        registry = registry.MustRegister(Sized("first", 65536) with { Description = "replaced" });

        var result = new ModelRouter(registry).RouteForContext(null, 20000);

        Assert.Equal("first", result.Endpoint?.Id.Value);
    }

    [Fact]
    public void RouteForContext_FallbackTie_ReRegisteredAfterUnregisterGoesLast()
    {
        var registry = RegistryOf(Sized("default", 4096, isDefault: true), Sized("first", 65536), Sized("second", 65536));
        registry = registry.Unregister("first").Registry.MustRegister(Sized("first", 65536));

        var result = new ModelRouter(registry).RouteForContext(null, 20000);

        Assert.Equal("second", result.Endpoint?.Id.Value);
    }

    [Fact]
    public void RouteForContext_FallbackTie_FirstRegisteredNotReady_NextReadyWins()
    {
        var registry = RegistryOf(Sized("default", 4096, isDefault: true), Sized("first", 65536), Sized("second", 65536), Sized("third", 65536));
        registry = registry.SetStatus("first", EndpointStatus.Loading).Registry;

        var result = new ModelRouter(registry).RouteForContext(null, 20000);

        Assert.Equal("second", result.Endpoint?.Id.Value);
    }
}
