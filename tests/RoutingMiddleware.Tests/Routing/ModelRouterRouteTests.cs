using ModelRouting.Registry;
using ModelRouting.Routing;
using static ModelRouting.Tests.TestSupport.RegistryTestExtensions;

namespace ModelRouting.Tests.Routing;

public class ModelRouterRouteTests
{
    private static ModelRouter Router(params ModelEndpoint[] endpoints) => new(RegistryOf(endpoints));

    [Fact]
    public void Route_KnownId_ReturnsTheEndpoint()
    {
        var result = Router(Endpoint("bonsai-8b"), Endpoint("bonsai-8b:sql")).Route("bonsai-8b:sql");

        Assert.True(result.Succeeded);
        Assert.Equal("bonsai-8b:sql", result.Endpoint.Id.Value);
        Assert.Null(result.Error);
        Assert.False(result.IsContextFallback);
    }

    [Fact]
    public void Route_Alias_ReturnsTheTarget()
    {
        var result = Router(Endpoint("bonsai-8b") with { Aliases = ["gpt-4o-mini"] }).Route("gpt-4o-mini");

        Assert.Equal("bonsai-8b", result.Endpoint?.Id.Value);
    }

    [Fact]
    public void Route_UnknownModel_ReturnsModelNotFound()
    {
        var result = Router(Endpoint("bonsai-8b") with { IsDefault = true }).Route("gpt-5");

        Assert.False(result.Succeeded);
        Assert.Null(result.Endpoint);
        Assert.Equal(RoutingErrorKind.ModelNotFound, result.Error.Kind);
        Assert.Equal("gpt-5", result.Error.Model);
        Assert.Equal("model 'gpt-5' not found", result.Error.Message);
    }

    [Theory]
    [InlineData("BONSAI-8B")]
    [InlineData("Gpt-4o-mini")]
    public void Route_WrongCase_ReturnsModelNotFound(string model)
    {
        var result = Router(Endpoint("bonsai-8b") with { Aliases = ["gpt-4o-mini"], IsDefault = true }).Route(model);

        Assert.Equal(RoutingErrorKind.ModelNotFound, result.Error?.Kind);
    }

    [Fact]
    public void Route_EmptyModelName_IsNamedAndNotFound_NotTheDefault()
    {
        var result = Router(Endpoint("bonsai-8b") with { IsDefault = true }).Route("");

        Assert.Equal(RoutingErrorKind.ModelNotFound, result.Error?.Kind);
        Assert.Equal("", result.Error?.Model);
    }

    [Fact]
    public void Route_NoModel_FallsBackToTheDefault()
    {
        var result = Router(Endpoint("a"), Endpoint("b") with { IsDefault = true }).Route(null);

        Assert.Equal("b", result.Endpoint?.Id.Value);
        Assert.False(result.IsContextFallback);
    }

    [Fact]
    public void Route_NoModelAndNoDefault_ReturnsNoModelsAvailable()
    {
        var result = Router(Endpoint("a"), Endpoint("b")).Route(null);

        Assert.Equal(RoutingErrorKind.NoModelsAvailable, result.Error?.Kind);
        Assert.Null(result.Error?.Model);
        Assert.Equal("no models are currently available", result.Error?.Message);
    }

    [Fact]
    public void Route_NoModelAndEmptyRegistry_ReturnsNoModelsAvailable() =>
        Assert.Equal(RoutingErrorKind.NoModelsAvailable, new ModelRouter(ModelRegistry.Empty).Route(null).Error?.Kind);

    [Fact]
    public void Route_NoModelAfterDefaultUnregistered_ReturnsNoModelsAvailable()
    {
        var registry = RegistryOf(Endpoint("a") with { IsDefault = true }, Endpoint("b")).Unregister("a").Registry;

        Assert.Equal(RoutingErrorKind.NoModelsAvailable, new ModelRouter(registry).Route(null).Error?.Kind);
    }

    [Theory]
    [InlineData(EndpointStatus.Loading, "loading")]
    [InlineData(EndpointStatus.Error, "error")]
    [InlineData(EndpointStatus.Disabled, "disabled")]
    public void Route_NotReadyModel_ReturnsModelNotReadyWithStatusName(EndpointStatus status, string name)
    {
        var result = Router(Endpoint("bonsai-8b") with { Status = status, Aliases = ["small"] }).Route("small");

        Assert.Equal(RoutingErrorKind.ModelNotReady, result.Error?.Kind);
        Assert.Equal("bonsai-8b", result.Error?.Model);
        Assert.Equal(name, result.Error?.Status);
        Assert.Equal($"model 'bonsai-8b' is not ready (status: {name})", result.Error?.Message);
    }

    [Fact]
    public void Route_NoModelAndDefaultNotReady_ReturnsModelNotReady()
    {
        var result = Router(Endpoint("a") with { IsDefault = true, Status = EndpointStatus.Loading }, Endpoint("b")).Route(null);

        Assert.Equal(RoutingErrorKind.ModelNotReady, result.Error?.Kind);
        Assert.Equal("a", result.Error?.Model);
        Assert.Equal("loading", result.Error?.Status);
    }

    [Fact]
    public void Route_Span_MatchesString()
    {
        var router = Router(Endpoint("bonsai-8b") with { Aliases = ["gpt-4"], IsDefault = true });
        var body = "xxgpt-4yy".AsSpan();

        Assert.Equal("bonsai-8b", router.Route(body.Slice(2, 5), named: true).Endpoint?.Id.Value);
        Assert.Equal("bonsai-8b", router.Route([], named: false).Endpoint?.Id.Value);
        Assert.Equal(RoutingErrorKind.ModelNotFound, router.Route([], named: true).Error?.Kind);
    }

    [Fact]
    public void Registry_IsTheOneGiven()
    {
        var registry = RegistryOf(Endpoint("a"));

        Assert.Same(registry, new ModelRouter(registry).Registry);
    }
}
