using ModelRouting.Observability;
using ModelRouting.Registry;

namespace ModelRouting.Tests.Observability;

/// <summary>The <c>gen_ai.request.model</c> label: registry strings for names that resolve, one fixed label otherwise.</summary>
public sealed class ModelLabelsTests
{
    private static readonly ModelEndpoint Endpoint = new(new ModelId("qwen3-8b"), "qwen3-8b", "pool") { Aliases = ["gpt-4o-mini"] };

    [Fact]
    public void Of_TheEndpointsId_IsTheRegistrysOwnString()
    {
        var name = "qwen3-8b".ToCharArray();
        Assert.Same(Endpoint.Id.Value, ModelLabels.Of(name, true, Endpoint));
    }

    [Fact]
    public void Of_AConfiguredAlias_IsTheRegistrysOwnString()
    {
        var name = "gpt-4o-mini".ToCharArray();
        Assert.Same(Endpoint.Aliases[0], ModelLabels.Of(name, true, Endpoint));
    }

    [Fact]
    public void Of_ANameThatResolvesOtherwise_IsCopiedOnceAndCut()
    {
        // An alias added at run time resolves to the endpoint without being in its configured aliases.
        var first = ModelLabels.Of("runtime-alias".ToCharArray(), true, Endpoint);
        var second = ModelLabels.Of("runtime-alias".ToCharArray(), true, Endpoint);
        Assert.Equal("runtime-alias", first);
        Assert.Same(first, second);

        var longName = new string('a', 500);
        Assert.Equal(ModelLabels.MaxLength, ModelLabels.Of(longName, true, Endpoint).Length);
    }

    [Theory]
    [InlineData("no-such-model")]
    [InlineData("client-made-up-\u202e-name")]
    public void Of_AnUnknownName_IsOneFixedLabel(string name)
    {
        Assert.Same(ModelLabels.Unknown, ModelLabels.Of(name, true, null));
    }

    [Fact]
    public void Of_NoModelNamed_IsTheNoneLabel()
    {
        Assert.Same(ModelLabels.None, ModelLabels.Of([], false, Endpoint));
    }
}
