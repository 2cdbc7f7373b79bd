using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using ModelRouting.Errors;

namespace ModelRouting.Admin;

/// <summary>Reads admin API requests: route values (escaped ids) and JSON object bodies.</summary>
internal static class AdminRequest
{
    /// <summary>How an endpoint definition is read: configuration's field names, any case; unknown fields refused.</summary>
    public static readonly JsonSerializerOptions DefinitionJson = new()
    {
        PropertyNameCaseInsensitive = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Gets route value <paramref name="name"/>, unescaped (ids hold <c>:</c> and <c>/</c>).</summary>
    public static string RouteValue(HttpContext context, string name) =>
        Uri.UnescapeDataString(context.Request.RouteValues[name] as string ?? "");

    /// <summary>Gets the string property <paramref name="name"/> (any case), or null when absent or not a string.</summary>
    public static string? GetString(JsonObject body, string name)
    {
        foreach (var (key, value) in body)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                return value?.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
            }
        }

        return null;
    }

    /// <summary>Reads the body as a JSON object, or the 400 to answer.</summary>
    public static async Task<(JsonObject? Value, OpenAIError? Error)> ReadObjectAsync(HttpContext context)
    {
        try
        {
            var node = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            return node is JsonObject obj ? (obj, null) : (null, OpenAIError.InvalidRequest("The request body must be a JSON object."));
        }
        catch (JsonException e)
        {
            return (null, OpenAIError.InvalidRequest("The request body is not valid JSON: " + e.Message));
        }
    }
}
