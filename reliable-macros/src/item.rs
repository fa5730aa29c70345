//! Facts about the annotated function.

use syn::{ReturnType, Type};

/// The function as written, parsed once.
pub(crate) struct FnItem {
    pub(crate) func: syn::ItemFn,
}

impl FnItem {
    pub(crate) fn is_async(&self) -> bool {
        self.func.sig.asyncness.is_some()
    }

    pub(crate) fn return_type(&self) -> Option<&Type> {
        match &self.func.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some(ty),
        }
    }

    /// Whether the fn takes `&mut self` or a `&mut` argument.
    pub(crate) fn borrows_mutably(&self) -> bool {
        self.func.sig.inputs.iter().any(|input| match input {
            syn::FnArg::Receiver(receiver) => receiver.mutability.is_some() && receiver.reference.is_some()
                || matches!(&*receiver.ty, Type::Reference(reference) if reference.mutability.is_some()),
            syn::FnArg::Typed(typed) => {
                matches!(&*typed.ty, Type::Reference(reference) if reference.mutability.is_some())
                    || matches!(&*typed.pat, syn::Pat::Ident(ident) if ident.mutability.is_some())
            }
        })
    }

    /// Whether the return type mentions `impl Trait`, which cannot be written in a `let` or a
    /// closure's return type, so the expansion must leave it to inference.
    pub(crate) fn returns_impl_trait(&self) -> bool {
        self.return_type().is_some_and(contains_impl_trait)
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    syn::visit::visit_type(&mut finder, ty);
    finder.0
}
