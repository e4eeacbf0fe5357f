// The question `patchgen scan` answers, asked of Coccinelle, for the
// side-by-side benchmark: where is a page put and then poisoned?
@r@
expression E;
position p;
@@
put_page@p(E);
... when != E = ...
(
test_set_page_hwpoison(E)
|
TestSetPageHWPoison(E)
|
SetPageHWPoison(E)
)

@script:python depends on r@
p << r.p;
@@
print("%s:%s" % (p[0].file, p[0].line))
