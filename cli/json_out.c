/* Any schema record as JSON, field by field, so every --json listing follows the schema. */
#include <jansson.h>
#include <stdio.h>

#include "cli/cli.h"

static json_t *record_to_json(const struct precord *r)
{
	json_t *o = json_object();
	for (size_t i = 0; i < r->def->nfields; i++) {
		const struct field_def *f = &r->def->fields[i];
		const struct pval *v = &r->v[i];
		json_t *j = NULL;
		if (!(r->present & (1u << i))) {
			if (f->type == FT_STRLIST || f->type == FT_RECORDS)
				json_object_set_new(o, f->name, json_array());
			continue;
		}
		switch (f->type) {
		case FT_STR:
			j = json_stringn(v->s.p, v->s.n);
			break;
		case FT_BIN:
			j = json_stringn(v->s.p, v->s.n);
			break;
		case FT_UINT:
			j = json_integer((json_int_t)v->u);
			break;
		case FT_INT:
			j = json_integer((json_int_t)v->i);
			break;
		case FT_BOOL:
			j = json_boolean(v->b);
			break;
		case FT_STRLIST:
			j = json_array();
			for (uint32_t k = 0; k < v->list.n; k++)
				json_array_append_new(j, json_string(v->list.v[k]));
			break;
		case FT_RECORDS:
			j = json_array();
			for (uint32_t k = 0; k < v->recs.n; k++)
				json_array_append_new(j, record_to_json(&v->recs.v[k]));
			break;
		}
		if (j)
			json_object_set_new(o, f->name, j);
	}
	return o;
}

void cli_print_json(const struct precord *r)
{
	json_t *o = record_to_json(r);
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(o);
}

void cli_print_json_list(const struct precord *r, const char *field)
{
	json_t *a = json_array();
	const struct pval *v = prec_get(r, field);
	for (uint32_t k = 0; v && k < v->recs.n; k++)
		json_array_append_new(a, record_to_json(&v->recs.v[k]));
	json_dumpf(a, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(a);
}
