/** The test suites' OpenID provider: the same real oidc-provider the demo runs (examples/oidc-provider.ts). */
export * from '../../examples/oidc-provider.ts';
