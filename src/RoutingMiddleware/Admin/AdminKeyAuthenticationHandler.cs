using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;
using ModelRouting.Errors;
using ModelRouting.Logging;

namespace ModelRouting.Admin;

/// <summary>
/// The admin API's authentication scheme: <c>Authorization: Bearer &lt;ModelRouting:Admin:Key&gt;</c>, compared
/// in fixed time. Its challenge answers an OpenAI-shaped 401 with <c>WWW-Authenticate: Bearer</c>, or 404 while
/// no key is configured (the admin API is off). Never the default scheme: it runs only for endpoints whose
/// policy names it, so the proxy routes are untouched (and it authenticates nothing else if a host made it the default).
/// </summary>
internal sealed partial class AdminKeyAuthenticationHandler(
    IOptionsMonitor<AdminKeyAuthenticationOptions> schemeOptions,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    IOptionsMonitor<ModelRoutingOptions> routing)
    : AuthenticationHandler<AdminKeyAuthenticationOptions>(schemeOptions, loggerFactory, encoder)
{
    /// <summary>The scheme's name.</summary>
    public const string SchemeName = "ModelRoutingAdmin";

    private const string Bearer = "Bearer ";

    /// <inheritdoc />
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var key = routing.CurrentValue.Admin.Key;
        var header = Request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(key) || header.Length == 0 || !IsAdminEndpoint(Context.GetEndpoint()))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (!Matches(header, key))
        {
            return Task.FromResult(AuthenticateResult.Fail("The admin key is missing or wrong."));
        }

        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "admin")], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    /// <inheritdoc />
    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (string.IsNullOrEmpty(routing.CurrentValue.Admin.Key))
        {
            return OpenAIError.NotFound("The admin API is not enabled: no admin key is configured (ModelRouting:Admin:Key).").WriteAsync(Context);
        }

        Log.Unauthorized(Logger, Request.Method, LogValue.Sanitize(Request.Path.Value));
        Response.Headers.WWWAuthenticate = "Bearer";
        return OpenAIError.Unauthorized("The admin API needs 'Authorization: Bearer <admin key>' with the configured admin key.").WriteAsync(Context);
    }

    /// <inheritdoc />
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        new OpenAIError(StatusCodes.Status403Forbidden, OpenAIError.InvalidRequestError, "forbidden", "The admin key does not allow this call.").WriteAsync(Context);

    // Only the admin endpoints are authenticated with the admin key, even if a host made this scheme its default:
    // a client's API key on a proxy request is never compared with it, nor logged as a failed admin login.
    private static bool IsAdminEndpoint(Endpoint? endpoint) =>
        endpoint is not null && endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>().Any(a => a.Policy == AdminServiceCollectionExtensions.PolicyName);

    /// <summary>Whether <paramref name="header"/> is <c>Bearer &lt;key&gt;</c>, compared in fixed time.</summary>
    internal static bool Matches(string header, string key)
    {
        if (!header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        // Hashes have equal lengths, so the comparison takes the same time whatever the key's length.
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header[Bearer.Length..].Trim()));
        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        return CryptographicOperations.FixedTimeEquals(given, expected);
    }

    private static partial class Log
    {
        [LoggerMessage(40, LogLevel.Warning, "Refused an admin call without a valid admin key: {Method} {Path}", EventName = "AdminUnauthorized")]
        public static partial void Unauthorized(ILogger logger, string method, string path);
    }
}
