using ModelRouting.Registry;

namespace ModelRouting.Tests.Registry;

public class ModelIdTests
{
    [Theory]
    [InlineData("bonsai-8b", true)]
    [InlineData("org/model", true)]
    [InlineData("bonsai-8b:sql", false)]
    [InlineData("a:b:c", false)]
    [InlineData("base:", false)]
    [InlineData(":adapter", false)]
    public void IsBase_IsTrueOnlyWithoutColon(string id, bool expected) =>
        Assert.Equal(expected, new ModelId(id).IsBase);

    [Theory]
    [InlineData("bonsai-8b:sql", "sql")]
    [InlineData("a:b:c", "b:c")]
    [InlineData("base:", "")]
    [InlineData(":adapter", "adapter")]
    [InlineData("org/model:lora/v2", "lora/v2")]
    public void AdapterName_IsEverythingAfterTheFirstColon(string id, string expected) =>
        Assert.Equal(expected, new ModelId(id).AdapterName);

    [Theory]
    [InlineData("bonsai-8b")]
    [InlineData("org/model")]
    [InlineData("")]
    public void AdapterName_OfBaseId_IsNull(string id) => Assert.Null(new ModelId(id).AdapterName);

    [Theory]
    [InlineData("bonsai-8b", "bonsai-8b")]
    [InlineData("bonsai-8b:sql", "bonsai-8b")]
    [InlineData("a:b:c", "a")]
    [InlineData(":adapter", "")]
    public void BaseName_IsEverythingBeforeTheFirstColon(string id, string expected) =>
        Assert.Equal(expected, new ModelId(id).BaseName);

    [Theory]
    [InlineData("bonsai-8b")]
    [InlineData("bonsai-8b:sql")]
    [InlineData("a:b:c")]
    public void ToString_ReturnsTheIdUnchanged(string id)
    {
        Assert.Equal(id, new ModelId(id).ToString());
        Assert.Equal(id, $"{new ModelId(id)}");
    }

    [Fact]
    public void ImplicitConversionFromString_KeepsTheValue()
    {
        ModelId id = "bonsai-8b:sql";

        Assert.Equal("bonsai-8b:sql", id.Value);
    }

    [Fact]
    public void Equality_IsOrdinalOnTheValue()
    {
        Assert.Equal(new ModelId("bonsai-8b"), new ModelId("bonsai-8b"));
        Assert.NotEqual(new ModelId("bonsai-8b"), new ModelId("Bonsai-8b"));
    }
}
