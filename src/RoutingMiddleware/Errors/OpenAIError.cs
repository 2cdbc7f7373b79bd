using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using ModelRouting.Routing;

namespace ModelRouting.Errors;

/// <summary>An error the gateway itself answers with, in OpenAI's shape (SPEC §9).</summary>
internal readonly record struct OpenAIError(int StatusCode, string Type, string Code, string Message, string? Param = null, int? RetryAfterSeconds = null)
{
    public const string InvalidRequestError = "invalid_request_error";
    public const string ServerError = "server_error";

    public static OpenAIError InvalidRequest(string message, string? param = null) =>
        new(StatusCodes.Status400BadRequest, InvalidRequestError, "invalid_request", message, param);

    public static OpenAIError RequestTooLarge(long limit) =>
        new(StatusCodes.Status413PayloadTooLarge, InvalidRequestError, "request_too_large",
            $"The request body is larger than the gateway's limit of {limit.ToString(CultureInfo.InvariantCulture)} bytes.");

    public static OpenAIError ModelNotFound(string model) =>
        new(StatusCodes.Status404NotFound, InvalidRequestError, "model_not_found",
            $"The model `{model}` does not exist or you do not have access to it.", "model");

    public static OpenAIError Unauthorized(string message) =>
        new(StatusCodes.Status401Unauthorized, InvalidRequestError, "invalid_api_key", message);

    /// <summary>A rate limit refusal (SPEC §14): 429, type <c>requests</c> or <c>tokens</c>, code <c>rate_limit_exceeded</c>.</summary>
    public static OpenAIError RateLimited(string type, string message, TimeSpan retryAfter) =>
        new(StatusCodes.Status429TooManyRequests, type, "rate_limit_exceeded", message, null, Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)));

    public static OpenAIError NotFound(string message, string? param = null) =>
        new(StatusCodes.Status404NotFound, InvalidRequestError, "not_found", message, param);

    /// <summary>A path outside the client surface (SPEC §12): 404 <c>unknown_path</c>.</summary>
    public static OpenAIError UnknownPath(string method, string? path) =>
        new(StatusCodes.Status404NotFound, InvalidRequestError, "unknown_path",
            $"Invalid URL ({method} {(path is { Length: > 256 } ? path[..256] + "…" : path)}): the gateway does not serve this path.");

    public static OpenAIError UpstreamUnavailable(int statusCode, string detail) =>
        new(statusCode, ServerError, "upstream_unavailable", detail);

    /// <summary>Maps a routing error to its OpenAI error (SPEC §9).</summary>
    public static OpenAIError FromRouting(RoutingError error, long promptTokens, long outputTokens, int retryAfterSeconds) => error.Kind switch
    {
        RoutingErrorKind.ModelNotFound => ModelNotFound(error.Model ?? ""),
        RoutingErrorKind.ContextTooLong => new(StatusCodes.Status400BadRequest, InvalidRequestError, "context_length_exceeded",
            string.Create(CultureInfo.InvariantCulture,
                $"This model's maximum context length is {error.Available} tokens. However, you requested about {error.Required} tokens ({promptTokens} in the messages, {outputTokens} for the completion). Please reduce the length of the messages or completion. (model: {error.Model})"),
            "messages"),
        RoutingErrorKind.NoModelsAvailable => new(StatusCodes.Status400BadRequest, InvalidRequestError, "missing_model",
            "you must provide a model parameter", "model"),
        RoutingErrorKind.ModelNotReady => new(StatusCodes.Status503ServiceUnavailable, ServerError, "model_not_ready",
            $"The model `{error.Model}` is not ready (status: {error.Status}). Please retry later or choose another model.", "model",
            error.Status == "loading" || error.Transient ? retryAfterSeconds : null),
        _ => throw new ArgumentOutOfRangeException(nameof(error), error.Kind, null),
    };

    /// <summary>Writes the error as the response: status, Content-Type application/json and the JSON body.</summary>
    public Task WriteAsync(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = StatusCode;
        if (context.Features.Get<Usage.GatewayRequest>() is { } request)
        {
            // Metrics and the access log count refusals by code (SPEC §15).
            request.ErrorCode = Code;
            request.ErrorType = Type;
        }

        response.ContentType = "application/json";
        if (RetryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }

        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("error");
            writer.WriteString("message", Message);
            writer.WriteString("type", Type);
            if (Param is null)
            {
                writer.WriteNull("param");
            }
            else
            {
                writer.WriteString("param", Param);
            }

            writer.WriteString("code", Code);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        response.ContentLength = buffer.WrittenCount;
        return response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).AsTask();
    }
}
