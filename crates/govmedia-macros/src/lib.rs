//! `#[handlers]`: the attribute on a service's `impl XService for Handlers` block.
//!
//! Handlers are written in the domain's terms: a method returns
//! `Result<pb::XResponse, govmedia_domain::Error>`, and `?` works on every domain,
//! store and validation result. The attribute turns each such method into the
//! signature tonic's generated trait wants (`Result<Response<_>, Status>`) by running the
//! body and handing its result to `govmedia_kit::rpc::answer`, the one place an error
//! becomes a gRPC status. Methods already written against tonic's types (a streaming
//! call returning `Response<Self::Stream>`) pass through untouched. The attribute then
//! applies `tonic::async_trait`, so it replaces that attribute, not joins it.
//!
//! Used through its re-export, `#[govmedia_kit::handlers]`.

use proc_macro::TokenStream;
use quote::quote;
use syn::{GenericArgument, ImplItem, ItemImpl, PathArguments, ReturnType, Type, parse_macro_input, parse_quote};

/// Serves the handler methods of a tonic service trait impl; see the crate docs.
#[proc_macro_attribute]
pub fn handlers(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new_spanned(attr, "#[handlers] takes no arguments").to_compile_error().into();
    }
    let mut block = parse_macro_input!(item as ItemImpl);
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let ReturnType::Type(_, output) = &method.sig.output else { continue };
        let Some(answer) = domain_answer(output) else { continue };
        let written = output.clone();
        let body = &method.block;
        let request = request_ident(&method.sig);
        method.sig.output = parse_quote!(-> ::std::result::Result<::tonic::Response<#answer>, ::tonic::Status>);
        method.block = match request {
            // The caller and method are taken before the body moves the request, so a
            // refusal it answers can be audited (govmedia_kit::refusals).
            Some(request) => parse_quote!({
                let watch = ::govmedia_kit::refusals::Watch::of(&#request);
                let result: #written = async move #body.await;
                ::govmedia_kit::rpc::answer(::govmedia_kit::refusals::watched(watch, result).await)
            }),
            None => parse_quote!({
                let result: #written = async move #body.await;
                ::govmedia_kit::rpc::answer(result)
            }),
        };
    }
    quote!(#[::tonic::async_trait] #block).into()
}

/// `T` of a `Result<T, E>` whose `T` is not already a `Response<_>`.
/// The name of the handler's request argument (the first after `self`).
fn request_ident(sig: &syn::Signature) -> Option<syn::Ident> {
    sig.inputs.iter().find_map(|input| match input {
        syn::FnArg::Typed(typed) => match typed.pat.as_ref() {
            syn::Pat::Ident(ident) => Some(ident.ident.clone()),
            _ => None,
        },
        syn::FnArg::Receiver(_) => None,
    })
}

fn domain_answer(output: &Type) -> Option<Type> {
    let Type::Path(path) = output else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    let Some(GenericArgument::Type(answer)) = args.args.first() else { return None };
    if let Type::Path(inner) = answer
        && inner.path.segments.last().is_some_and(|s| s.ident == "Response")
    {
        return None;
    }
    Some(answer.clone())
}
