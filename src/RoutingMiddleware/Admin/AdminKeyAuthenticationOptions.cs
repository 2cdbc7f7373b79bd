using Microsoft.AspNetCore.Authentication;

namespace ModelRouting.Admin;

/// <summary>
/// Options of the <see cref="AdminKeyAuthenticationHandler"/> scheme. The key itself is read from
/// <c>ModelRouting:Admin:Key</c> on every call, so a reloaded key takes effect at once.
/// </summary>
internal sealed class AdminKeyAuthenticationOptions : AuthenticationSchemeOptions;
